/*
 * modules.c — the daemon's modules, in order: the one place that names them
 * all (core/module.h says what a module is). Adding a service to the daemon
 * is one line here.
 *
 * ORDER: init runs top to bottom, so observers run in this order too: the
 * flows module first (a dead client's flow sides end before anything else
 * reacts, and the peers are told at once), then the registry (its
 * registrations go: pending requests re-dispatched), activation, the models,
 * groups. Shutdown runs bottom to top: the broker's flow ends (models) before
 * the flows (flows). The order of the resolvers is their rank
 * (flows/resolve.h), not this one.
 */
#include "common/util.h"
#include "daemon/core/client.h"
#include "daemon/core/module.h"
#include "daemon/directory/dirmodule.h"
#include "daemon/flows/flows.h"
#include "daemon/groups/group.h"
#include "daemon/hosts/hosts.h"
#include "daemon/models/models.h"
#include "daemon/monitor/monitor.h"
#include "daemon/names/activation.h"
#include "daemon/names/registry.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const daemon_module *const table[] = {
        &client_module,     /* core: HELLO */
        &flows_module,      /* flows, their ends, ALLOC, DEALLOC, LIST, the resolver list */
        &registry_module,   /* REGISTER, ACCEPT, REFUSE; resolver "registry" */
        &activation_module, /* resolver "activation" */
        &models_module,     /* mailboxes, multicast, notifications; resolver "models" */
        &groups_module,     /* shared-memory groups and named segments */
        &hosts_module,      /* other hosts: HOSTS; resolvers "pinned", "hosts"; the relay end */
        &directory_module,  /* [directory] backend = etcd: publishing; resolver "directory" */
        &monitor_module,    /* MONITOR_OPEN: events of allocations, flows, names */
};

/* Modules linked in from outside the table (modules_add). */
#define EXTRA_MAX 4
static const daemon_module *extra[EXTRA_MAX];
static unsigned n_extra;

int modules_add(const daemon_module *m) {
        if (n_extra == EXTRA_MAX)
                return -ENOSPC;
        extra[n_extra++] = m;
        return 0;
}

/* The i-th module of the table and then the extras, or NULL. */
static const daemon_module *module_at(size_t i) {
        if (i < ARRAY_SIZE(table))
                return table[i];
        i -= ARRAY_SIZE(table);
        return i < n_extra ? extra[i] : NULL;
}

int modules_init(ipcfd *d) {
        for (size_t i = 0; module_at(i); i++) {
                int r = module_at(i)->init(d);
                if (r < 0) {
                        fprintf(stderr, "ipcfd: module %s: %s\n", module_at(i)->name, strerror(-r));
                        return r;
                }
        }
        return 0;
}

void modules_shutdown(ipcfd *d) {
        size_t n = ARRAY_SIZE(table) + n_extra;
        while (n-- > 0)
                if (module_at(n)->shutdown)
                        module_at(n)->shutdown(d);
}

int modules_check_conf(const struct conf *c, const char *runtime_dir, char *err, size_t size) {
        for (size_t i = 0; module_at(i); i++) {
                int r = module_at(i)->check_conf ? module_at(i)->check_conf(c, runtime_dir, err, size) : 0;
                if (r < 0)
                        return r;
        }
        return 0;
}

void modules_dump(ipcfd *d, char *buf, size_t size) {
        size_t len = 0;
        buf[0] = 0;
        for (size_t i = 0; module_at(i) && len < size; i++) {
                char part[128];
                if (!module_at(i)->dump)
                        continue;
                module_at(i)->dump(d, part, sizeof(part));
                int w = snprintf(buf + len, size - len, "%s%s", len ? ", " : "", part);
                len += w > 0 ? (size_t)w : 0;
        }
}
