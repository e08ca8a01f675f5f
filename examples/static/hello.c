/* A statically linked program: its closure is itself. */
#include <stdio.h>

int main(void) {
    puts("hello from a static binary");
    return 0;
}
