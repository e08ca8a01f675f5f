/* Loads a library by a name computed at run time ("lib" + "z" + ".so.1"),
 * which no static analysis can see: slim needs --trace or --keep. */
#include <dlfcn.h>
#include <stdio.h>

int main(void) {
    char name[64];
    const char *parts[] = {"lib", "z", ".so.", "1"};
    snprintf(name, sizeof name, "%s%s%s%s", parts[0], parts[1], parts[2], parts[3]);
    void *lib = dlopen(name, RTLD_NOW);
    if (!lib) {
        fprintf(stderr, "dlopen failed: %s\n", dlerror());
        return 1;
    }
    const char *(*version)(void) = (const char *(*)(void))dlsym(lib, "zlibVersion");
    printf("loaded %s: zlib %s\n", name, version ? version() : "?");
    return 0;
}
