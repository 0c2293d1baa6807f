/*
 * pipe-echo.c — the child's half of a pipe passed across exec().
 *
 * The parent made a pipe with ipcf_pipe(), exported one end with
 * ipcf_port_export() and started this program with the descriptor's number in
 * IPCF_PORT_FD. We import it and echo every message until the parent ends the
 * flow; then we end ours with the reason "echoed N".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "ipcf.h"

int main(void) {
        const char *env = getenv("IPCF_PORT_FD");
        if (!env) {
                fprintf(stderr, "pipe-echo: IPCF_PORT_FD is not set\n");
                return 2;
        }
        int port = ipcf_port_import(atoi(env));
        if (port < 0) {
                fprintf(stderr, "pipe-echo: import: %s\n", ipcf_strerror(port));
                return 1;
        }
        static char buf[1 << 16];
        ssize_t n;
        unsigned count = 0;
        while ((n = ipcf_read(port, buf, sizeof(buf), -1)) >= 0) {
                if (ipcf_write(port, buf, (size_t)n, -1) < 0)
                        break;
                count++;
        }
        char reason[64];
        snprintf(reason, sizeof(reason), "echoed %u", count);
        ipcf_dealloc(port, reason);
        return n == -EPIPE ? 0 : 1;
}
