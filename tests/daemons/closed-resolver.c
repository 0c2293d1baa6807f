/*
 * closed-resolver.c — the worked example of docs/ARCHITECTURE.md ("The
 * daemon's seams"): a trivial resolver, linked into a test build of ipcfd
 * (build/tests/ipcfd-closed-resolver) and exercised by
 * tests/test-resolver-example.c against that real daemon.
 *
 * It answers every plain flow to a name under "closed." with ECONNREFUSED
 * and a reason, after the registrations (a registered "closed.x" is still
 * reached) and before activation. In the daemon proper a module like this
 * lives in src/daemon/<folder>/ and is one line of src/daemon/modules.c; a
 * test build adds it from a constructor instead (modules_add).
 */
#include <errno.h>
#include <string.h>

#include "daemon/core/module.h"
#include "daemon/flows/alloc.h"
#include "daemon/flows/resolve.h"

/* Mine: "closed.*" — refused at once; anything else: the next resolver. */
static int closed_resolve(ipcfd *d, alloc *a) {
        if (strncmp(a->name, "closed.", 7) != 0)
                return RESOLVE_NEXT;
        alloc_fail(a, -ECONNREFUSED, "closed for the night", IPCF_END_REFUSED);
        return 0; /* taken: a is gone */
}

static const resolver closed_resolver = {
        .name = "closed",
        .rank = RESOLVE_RANK_REGISTRY + 50, /* after the registry, before the models */
        .roles = RESOLVE_ROLE(CTL_ROLE_FLOW),
        .resolve = closed_resolve,
};

static int closed_init(ipcfd *d) { return resolver_add(&closed_resolver); }

static const daemon_module closed_module = { .name = "closed", .init = closed_init };

/* Test build only: in src/daemon, one line in modules.c's table instead. */
__attribute__((constructor)) static void closed_register(void) { modules_add(&closed_module); }
