/*
 * module.h — what a service of the daemon is to the core: a name and three
 * functions. The modules and their order are one table, src/daemon/modules.c
 * (the only file that names them all); main.c runs modules_init() at start
 * and modules_shutdown() at exit, and knows no module.
 *
 * A MODULE'S INIT registers everything the module plugs in, and nothing runs
 * before it: its request handlers (dispatch_add, dispatch.h), its observers
 * (observe, observe.h), its resolvers (resolver_add, flows/resolve.h), the
 * kinds of objects clients hold in it (client_hold_kind, client.h).
 * Order matters twice: observers run in subscription order (the flows module
 * comes first, so a death reaches the peers of the dead process before any
 * other module reacts), and modules are shut down in reverse order (the
 * broker's ends before the flows they hold).
 *
 * SHUTDOWN releases everything the module holds and tells nobody anything
 * (ipcfd.shutdown is set: flows live on in their processes); the clients are
 * freed after every module was shut down.
 */
#pragma once

#include <stddef.h>

#include "daemon/core/ipcfd.h"

struct conf;

typedef struct daemon_module {
        const char *name;
        /* Register methods, observers, resolvers; 0 or -errno (the daemon exits 1). */
        int (*init)(ipcfd *d);
        /* Release everything (daemon exit). May be NULL. */
        void (*shutdown)(ipcfd *d);
        /* A short phrase for the SIGUSR1 dump ("3 flows"). May be NULL. */
        void (*dump)(ipcfd *d, char *buf, size_t size);
        /* Check a config that parsed against what the module keeps outside
         * it (its state on disk), before the daemon uses it: at start, on
         * SIGHUP and for --check-config (no daemon: touch nothing, make
         * nothing). runtime_dir is the one the daemon has or would have.
         * 0, or -EINVAL with "line N: what" in err. May be NULL. */
        int (*check_conf)(const struct conf *c, const char *runtime_dir, char *err, size_t size);
} daemon_module;

/* modules.c: add a module after the table's, for a daemon built with a
 * module from outside src/daemon (a test's): call it from a constructor,
 * before main(). Returns 0 or -ENOSPC. */
int modules_add(const daemon_module *m);
/* modules.c: init every module in the table's order, then the added ones;
 * stops at the first failure and returns it. */
int modules_init(ipcfd *d);
/* modules.c: shut down every module, in reverse order. */
void modules_shutdown(ipcfd *d);
/* modules.c: every module's check_conf, in order; the first failure. */
int modules_check_conf(const struct conf *c, const char *runtime_dir, char *err, size_t size);
/* modules.c: the modules' dump phrases, comma-separated, into buf. */
void modules_dump(ipcfd *d, char *buf, size_t size);
