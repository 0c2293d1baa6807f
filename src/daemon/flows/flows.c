/*
 * flows.c — the flows module's registration (see flows.h): the order of its
 * parts' init matters for the observers of a client's death — its flow sides
 * end first (the peers learn of the death at once), then its allocations are
 * withdrawn.
 */
#include "daemon/flows/flows.h"

#include <stdio.h>

#include "daemon/flows/alloc.h"
#include "daemon/flows/clientend.h"
#include "daemon/flows/flow.h"
#include "common/util.h"

static int flows_init(ipcfd *d) {
        int r = client_end_init(d);
        if (r == 0)
                r = alloc_init(d);
        if (r == 0)
                r = list_init(d);
        return r;
}

static void flows_shutdown(ipcfd *d) {
        alloc_free_all(d);
        flow_free_all(d);
}

static void flows_dump(ipcfd *d, char *buf, size_t size) {
        size_t a = alloc_count(), f = flow_count();
        snprintf(buf, size, "%zu allocation%s, %zu flow%s", a, plural(a), f, plural(f));
}

const daemon_module flows_module = {
        .name = "flows",
        .init = flows_init,
        .shutdown = flows_shutdown,
        .dump = flows_dump,
};
