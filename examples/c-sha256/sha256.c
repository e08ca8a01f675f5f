/* Prints the SHA-256 of its argument (default "distill") with OpenSSL's
 * libcrypto: a C program whose closure is libssl/libcrypto + glibc. */
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *text = argc > 1 ? argv[1] : "distill";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL)) {
        fprintf(stderr, "EVP_Digest failed\n");
        return 1;
    }
    for (unsigned int i = 0; i < len; i++)
        printf("%02x", md[i]);
    /* libssl too, so both libraries are loaded. */
    printf("  %s (%s)\n", text, OpenSSL_version(OPENSSL_VERSION) ? "openssl" : "?");
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        fprintf(stderr, "SSL_CTX_new failed\n");
        return 1;
    }
    SSL_CTX_free(ctx);
    return 0;
}
