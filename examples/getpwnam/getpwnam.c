/* Resolves user names with getpwnam(3): glibc reads /etc/nsswitch.conf and
 * asks the NSS "files" service, which reads /etc/passwd. */
#include <pwd.h>
#include <stdio.h>

int main(int argc, char **argv) {
    int status = 0;
    for (int i = 1; i < argc; i++) {
        struct passwd *pw = getpwnam(argv[i]);
        if (!pw) {
            printf("%s: no such user\n", argv[i]);
            status = 1;
            continue;
        }
        printf("%s uid=%u gid=%u home=%s\n", pw->pw_name, (unsigned)pw->pw_uid, (unsigned)pw->pw_gid, pw->pw_dir);
    }
    return status;
}
