/*
 * verbs.c — the calls every handle answers, whatever its kind: ipcf_dealloc
 * (Deallocate(port-id, reason): close it and end what it names), ipcf_detach
 * (close it in this process only), ipcf_fd (what to poll), and ipcf_free (what
 * the library returned allocated). Each goes through the handle's kind
 * (handle_kind, lib.h): nothing here names a kind.
 */
#include <errno.h>
#include <stdlib.h>

#include "lib/core/lib.h"

int ipcf_dealloc(int h, const char *reason) {
        void *obj = handle_close(h, NULL);
        if (!obj)
                return -EBADF;
        const handle_kind *k = handle_kind_of(obj);
        if (k->end)
                k->end(obj, reason);
        handle_put(obj); /* the last put (maybe another thread's) destroys it */
        return 0;
}

int ipcf_detach(int h) {
        void *obj = handle_close(h, NULL);
        if (!obj)
                return -EBADF;
        const handle_kind *k = handle_kind_of(obj);
        int r = k->detach ? k->detach(obj) : 0;
        handle_put(obj);
        return r;
}

int ipcf_fd(int h) {
        void *obj = handle_get(h, NULL);
        if (!obj)
                return -EBADF;
        const handle_kind *k = handle_kind_of(obj);
        int fd = k->fd ? k->fd(obj) : -EBADF;
        handle_put(obj);
        return fd;
}

void ipcf_free(void *p) {
        free(p);
}
