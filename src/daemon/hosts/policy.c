/*
 * policy.c — the remote access policy (hosts.h; docs/DAEMON.md "Remote
 * access"): the first [name] rule matching a name decides, as for local
 * access (core/policy.c).
 *
 *   remote_allocate  who, on which host, may allocate the name here. Absent
 *                    or empty: nobody from any host (the default: nothing is
 *                    reachable from other hosts unless the config says so).
 *                    A principal is the one the requesting host's daemon
 *                    asserts (authenticated by its key): its uid, primary gid
 *                    and user name.
 *   remote_register  whose registrations of the name other hosts may reach
 *                    (local principals, as `register`). Absent: any
 *                    registrant's.
 */
#include <errno.h>
#include <string.h>

#include "daemon/core/policy.h"
#include "daemon/hosts/hosts.h"

/* Does the remote principal w (with its host) name m's requester on host? */
static bool remote_who_matches(const conf_who *w, const char *host, const hw_msg *m) {
        if (strcmp(w->host, "*") != 0 && strcmp(w->host, host) != 0)
                return false;
        switch (w->kind) {
        case CONF_WHO_ANY: return true;
        case CONF_WHO_UID: return m->who.uid == w->id;
        case CONF_WHO_GID: return m->who.gid == w->id;
        case CONF_WHO_USER: return m->user[0] && strcmp(m->user, w->name) == 0;
        default: return false;
        }
}

int hosts_policy_allocate(const ipcfd *d, const char *host, const char *name, const hw_msg *m) {
        const conf_rule *r = conf_match(&d->conf, name);
        if (!r)
                return -EACCES;
        for (size_t i = 0; i < r->remote_allocate.n; i++)
                if (remote_who_matches(&r->remote_allocate.who[i], host, m))
                        return 0;
        return -EACCES;
}

bool hosts_policy_register(const ipcfd *d, const char *name, const cred *who) {
        const conf_rule *r = conf_match(&d->conf, name);
        if (!r || !r->remote_reg.set)
                return true;
        return policy_acl_allows(&r->remote_reg, who);
}
