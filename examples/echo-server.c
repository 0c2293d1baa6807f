/*
 * echo-server.c — a service reachable by name that echoes every message.
 *
 *   echo-server NAME [-k]     register NAME, accept a flow, echo until it ends;
 *                             -k: keep accepting, one flow after another.
 *
 * The whole server side of ipcf in a few lines: register, accept (with who
 * asked), read/write with timeouts, and the end of the flow with its reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipcf.h"

int main(int argc, char **argv) {
        if (argc < 2) {
                fprintf(stderr, "usage: echo-server NAME [-k]\n");
                return 2;
        }
        int keep = argc > 2 && strcmp(argv[2], "-k") == 0;
        int reg = ipcf_register(argv[1], NULL);
        if (reg < 0) {
                fprintf(stderr, "echo-server: register %s: %s\n", argv[1], ipcf_strerror(reg));
                return 1;
        }
        static char buf[1 << 20];
        do {
                ipcf_request req;
                int port = ipcf_accept(reg, -1, &req);
                if (port < 0) {
                        fprintf(stderr, "echo-server: accept: %s\n", ipcf_strerror(port));
                        return 1;
                }
                ssize_t n;
                while ((n = ipcf_read(port, buf, sizeof(buf), -1)) >= 0)
                        if (ipcf_write(port, buf, (size_t)n, -1) < 0)
                                break;
                ipcf_dealloc(port, "echo done");
        } while (keep);
        ipcf_dealloc(reg, NULL);
        return 0;
}
