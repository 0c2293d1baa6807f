/*
 * policy.c — access rules (see policy.h).
 *
 * policy_resolve() runs each time the config is read (at start, and on a
 * SIGHUP reload): it is the only place that consults the user and group
 * databases (which may block on NSS).
 */
#include "daemon/core/policy.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>

#include "daemon/core/log.h"

/* Turn every user:/group: principal into uid:/gid: (or NONE when unknown),
 * for the local lists of every rule (remote_allocate names the principals
 * of other hosts: never looked up here). */
void policy_resolve(conf *c) {
        for (size_t i = 0; i < c->n_rules; i++) {
                conf_rule *r = &c->rules[i];
                conf_acl *acls[4] = { &r->allocate, &r->reg, &r->share, &r->remote_reg };
                for (int k = 0; k < 4; k++) {
                        unsigned line = acls[k]->line ? acls[k]->line : r->line; /* the key's */
                        for (size_t j = 0; j < acls[k]->n; j++) {
                                conf_who *w = &acls[k]->who[j];
                                if (w->kind == CONF_WHO_USER) {
                                        struct passwd *pw = getpwnam(w->name);
                                        if (pw) {
                                                w->kind = CONF_WHO_UID;
                                                w->id = pw->pw_uid;
                                        } else {
                                                log_error("config line %u: unknown user %s (ignored)",
                                                          line, w->name);
                                                w->kind = CONF_WHO_NONE;
                                        }
                                } else if (w->kind == CONF_WHO_GROUP) {
                                        struct group *gr = getgrnam(w->name);
                                        if (gr) {
                                                w->kind = CONF_WHO_GID;
                                                w->id = gr->gr_gid;
                                        } else {
                                                log_error("config line %u: unknown group %s (ignored)",
                                                          line, w->name);
                                                w->kind = CONF_WHO_NONE;
                                        }
                                }
                        }
                }
        }
}

typedef struct unenrolled_ctx {
        const char *self;
        bool warn;             /* hosts may come from the directory */
        char *err;
        size_t size;
} unenrolled_ctx;

/* One principal naming a host not enrolled: logged, or the error. */
static int unenrolled_one(void *arg, const conf_rule *r, const conf_who *w) {
        unenrolled_ctx *x = arg;
        char p[CONF_WHO_NAME_MAX + CONF_HOST_NAME_MAX + 16];
        conf_who_format(w, p, sizeof(p));
        if (x->warn) {
                log_error("config line %u: remote_allocate: '%s': host %s is not enrolled here yet: it matches once "
                          "the directory enrols it (trust_keys = yes)",
                          r->remote_allocate.line, p, w->host);
                return 0;
        }
        snprintf(x->err, x->size, "line %u: remote_allocate: '%s': no [host %s] section, and this host is %s",
                 r->remote_allocate.line, p, w->host, x->self);
        return -EINVAL;
}

int policy_check_remote_hosts(const conf *c, char *err, size_t size) {
        char self[CONF_HOST_NAME_MAX + 1];
        conf_hosts_self_name(c, self, sizeof(self));
        unenrolled_ctx x = { .self = self,
                             .warn = c->directory.backend == CONF_DIR_ETCD && c->directory.trust_keys,
                             .err = err,
                             .size = size };
        return conf_hosts_each_unenrolled(c, self, unenrolled_one, &x);
}

/* Membership as the kernel reported it at connect time (primary gid and
 * SO_PEERGROUPS): group changes after connecting are not seen, which is the
 * usual semantics of credentials passed over a socket. (ipcfd.h) */
bool cred_in_group(const cred *cr, gid_t gid) {
        if (cr->gid == gid)
                return true;
        for (unsigned i = 0; i < cr->n_groups; i++)
                if (cr->groups[i] == gid)
                        return true;
        return false;
}

int policy_check(const ipcfd *d, const char *name, enum policy_action act, const cred *cr) {
        /* Root and the daemon's own user control the facility anyway. */
        if (cr->uid == 0 || cr->uid == d->uid)
                return 0;
        /* First matching rule only: a later, more permissive one does not
         * apply (rules are ordered from specific to general by the admin). */
        const conf_rule *r = conf_match(&d->conf, name);
        if (!r)
                return -EACCES;
        const conf_acl *a = act == POLICY_REGISTER ? &r->reg : act == POLICY_SHARE ? &r->share : &r->allocate;
        return policy_acl_allows(a, cr) ? 0 : -EACCES;
}

int policy_name_local(const ipcfd *d, const char *name) {
        const char *at = strrchr(name, '@');
        if (!at || at == name || !d->host_pins)
                return 0;
        return d->host_pins(at + 1) ? -EINVAL : 0;
}

bool policy_acl_allows(const conf_acl *a, const cred *cr) {
        for (size_t i = 0; i < a->n; i++) {
                const conf_who *w = &a->who[i];
                switch (w->kind) {
                case CONF_WHO_ANY: return true;
                case CONF_WHO_UID:
                        if (cr->uid == w->id)
                                return true;
                        break;
                case CONF_WHO_GID:
                        if (cred_in_group(cr, w->id))
                                return true;
                        break;
                default: break; /* unresolved names never match */
                }
        }
        return false;
}
