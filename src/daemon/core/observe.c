/*
 * observe.c — the observer lists of the daemon (see observe.h): one fixed
 * array per event kind in the ipcfd, filled at start by the modules' init.
 */
#include "daemon/core/observe.h"

#include <errno.h>

#include "daemon/core/ipcfd.h"

int observe(ipcfd *d, enum observe_kind kind, observer_fn fn) {
        if ((unsigned)kind >= OBSERVE_KINDS_ || d->n_observers[kind] == OBSERVERS_MAX)
                return -ENOSPC;
        d->observers[kind][d->n_observers[kind]++] = fn;
        return 0;
}

void observe_emit(ipcfd *d, const observe_ev *ev) {
        for (unsigned i = 0; i < d->n_observers[ev->kind]; i++)
                d->observers[ev->kind][i](d, ev);
}
