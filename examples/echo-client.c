/*
 * echo-client.c — the client side of ipcf in ten lines: allocate a flow to a
 * name, write a message, read the answer, deallocate. The peer of
 * echo-server (or of `ipcf listen NAME --echo`).
 *
 *   echo-client NAME [TEXT]   prints what came back; exit 1 on any error
 *
 * Built from an installed ipcf with nothing but pkg-config:
 *   cc echo-client.c $(pkg-config --cflags --libs ipcf) -o echo-client
 */
#include <ipcf.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
        const char *name = argc > 1 ? argv[1] : "greeter", *text = argc > 2 ? argv[2] : "hello";
        char buf[256];
        int port = ipcf_alloc(name, NULL, 5000, NULL); /* NULL qos: the defaults */
        if (port < 0) {
                fprintf(stderr, "echo-client: %s: %s\n", name, ipcf_strerror(port));
                return 1;
        }
        ssize_t n = ipcf_write(port, text, strlen(text), 1000);
        if (n >= 0)
                n = ipcf_read(port, buf, sizeof(buf), 5000);
        if (n < 0) {
                fprintf(stderr, "echo-client: %s\n", ipcf_strerror((int)n));
                return 1;
        }
        printf("%.*s\n", (int)n, buf);
        ipcf_dealloc(port, "done");
        return 0;
}
