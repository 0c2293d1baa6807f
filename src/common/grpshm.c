/*
 * grpshm.c — initialisation of a group's control page (see grpshm.h).
 * Called by the daemon on a memfd it just created, before anyone else has it,
 * and by libipcf for the lock of a bounded buffer.
 */
#include "common/grpshm.h"

#include <errno.h>
#include <string.h>

int grpshm_mutex_init(pthread_mutex_t *m) {
        pthread_mutexattr_t a;
        int r = pthread_mutexattr_init(&a);
        if (r)
                return -r;
        if ((r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) == 0 &&
            (r = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK)) == 0 &&
            (r = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST)) == 0)
                r = pthread_mutex_init(m, &a);
        pthread_mutexattr_destroy(&a);
        return -r;
}

int grpshm_ctl_init(struct grpshm_ctl *c, uint64_t size) {
        memset(c, 0, sizeof(*c));
        c->magic = GRPSHM_MAGIC;
        c->version = GRPSHM_VERSION;
        atomic_store(&c->size, size);
        atomic_store(&c->gen, 1);
        return grpshm_mutex_init(&c->lock);
}
