/*
 * module.c — the directory module of the daemon (dirmodule.h): starts the
 * directory when the config says backend = etcd, publishes this host's
 * names, and turns the directory's changes into OBSERVE_NAME_CHANGED so
 * that watches (`ipcf watch`, the notification API) hear names of other
 * hosts come and go.
 *
 * WHAT IS PUBLISHED: a name registered here (names/registry.h) whose first
 * [name] rule lets some host allocate it (remote_allocate not empty) and
 * that has a registrant whose registrations other hosts may reach
 * (remote_register, hosts/policy.c). Decided again at each change of the
 * name (registration, unregistration, the registrant's death): published
 * at once, unpublished at once (directory.h: the key deleted). A daemon
 * that dies loses its names at the lease's expiry.
 *
 * WHAT A RECORD OF THIS HOST SAYS: its name, this host's UDP address and
 * public key, the key's fingerprint, and the attributes of [directory]
 * attributes (the same on every name of this host; record.h).
 *
 * NEVER BLOCKS: the directory is asynchronous in the daemon's loop;
 * nothing here waits for etcd.
 */
#include "daemon/directory/dirmodule.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "common/conf.h"
#include "common/ctl.h"
#include "common/util.h"
#include "daemon/core/log.h"
#include "daemon/core/module.h"
#include "daemon/core/observe.h"
#include "daemon/directory/cache.h"
#include "daemon/hosts/hosts.h"
#include "daemon/names/registry.h"
#include "efcp/keyfile.h"

directory *the_directory;

_Static_assert(CONF_DIR_ATTRS_MAX == DIR_ATTRS_MAX && CONF_DIR_ATTR_KEY_MAX == DIR_ATTR_KEY_MAX &&
                       CONF_DIR_ATTR_VAL_MAX == DIR_ATTR_VAL_MAX,
               "the config's attribute bounds are the record's");

/* [directory] attributes, as published with each name (read at start). */
static dir_attr host_attrs[DIR_ATTRS_MAX];
static unsigned n_host_attrs;

void dir_key_fp(const uint8_t pub[32], char out[DIR_KEY_FP_LEN + 1]) {
        uint8_t h[crypto_hash_sha256_BYTES];
        crypto_hash_sha256(h, pub, 32);
        memcpy(out, "sha256:", 7);
        sodium_bin2hex(out + 7, DIR_KEY_FP_LEN + 1 - 7, h, sizeof(h));
}

/* ---- publishing ------------------------------------------------------------ */

/* Is name, registered here, to be found by other hosts? */
static bool name_visible(ipcfd *d, const char *name) {
        const conf_rule *r = conf_match(&d->conf, name);
        if (!r || r->remote_allocate.n == 0)
                return false; /* no host may allocate it: nothing to say */
        return registry_any(d, name, hosts_policy_register);
}

static void publisher_on_name(ipcfd *d, const observe_ev *ev) {
        if (!the_directory || d->shutdown)
                return;
        bool want = name_visible(d, ev->name);
        if (want == dir_published(the_directory, ev->name))
                return;
        int r = want ? dir_publish(the_directory, ev->name, host_attrs, n_host_attrs) : dir_unpublish(the_directory, ev->name);
        if (r < 0)
                log_error("directory: %s %s: %s", want ? "publish" : "unpublish", ev->name, strerror(-r));
}

/* ---- the directory's changes ------------------------------------------------- */

/* A name's set of hosts changed (another host's record came or went):
 * watches of it ask the resolvers again. This host's own records are the
 * registry's business. */
static void on_directory_change(void *ctx, const char *name, const char *host, int change) {
        ipcfd *d = ctx;
        if (change == DIR_SAME || d->shutdown || strcmp(host, the_hosts.self) == 0)
                return;
        observe_emit(d, &(observe_ev){ .kind = OBSERVE_NAME_CHANGED, .name = name });
}

/* ---- its health in `ipcf hosts` and `ipcf ls --all-hosts` ---------------------- */

void dir_health_reply(ctl_builder *reply) {
        if (!the_directory)
                return;
        dir_trust_stats ts;
        dir_trust_get(&ts);
        dir_health h;
        dir_health_get(the_directory, &h);
        struct ctl_dir_health_wire w;
        memset(&w, 0, sizeof(w));
        str_copy(w.endpoint, h.etcd.endpoint, sizeof(w.endpoint));
        str_copy(w.last_error, h.etcd.last_error, sizeof(w.last_error));
        w.flags = htole32((h.etcd.reachable ? CTL_DIR_REACHABLE : 0) | (h.synced ? CTL_DIR_SYNCED : 0) |
                          (h.live ? CTL_DIR_LIVE : 0) | (h.complete ? CTL_DIR_COMPLETE : 0) |
                          (ts.trust_keys ? CTL_DIR_TRUST_KEYS : 0) | (h.degraded ? CTL_DIR_DEGRADED : 0) |
                          (h.host_conflict ? CTL_DIR_HOST_CONFLICT : 0));
        w.revision = (int64_t)htole64((uint64_t)h.revision);
        w.lease = (int64_t)htole64((uint64_t)h.lease);
        w.names = htole64(h.names);
        w.records = htole64(h.entries);
        w.bytes = htole64(h.bytes);
        w.published = htole64(h.published);
        w.unconfirmed = htole64(h.unconfirmed);
        w.failovers = htole64(h.etcd.failovers);
        w.leases_granted = htole64(h.leases_granted);
        w.rejected = htole64(h.rejected);
        w.resyncs = htole64(h.resyncs);
        w.watch_restarts = htole64(h.watch_restarts);
        w.unusable = htole64(ts.unusable);
        w.keys_refused = htole64(ts.keys_refused);
        w.enrolled = htole64(ts.enrolled);
        ctl_put(reply, CTL_A_DIR_HEALTH, &w, sizeof(w));
}

/* `ipcf hosts`: the health, and the attributes this host publishes with its
 * names ("K=V" a line, as a record's). */
static void dir_hosts_reply(ctl_builder *reply) {
        dir_health_reply(reply);
        char text[DIR_ATTRS_MAX * (DIR_ATTR_KEY_MAX + DIR_ATTR_VAL_MAX + 2) + 1];
        size_t n = 0;
        text[0] = 0;
        for (unsigned i = 0; i < n_host_attrs; i++) {
                int k = snprintf(text + n, sizeof(text) - n, "%s%s=%s", i ? "\n" : "", host_attrs[i].key,
                                 host_attrs[i].val);
                if (k < 0 || (size_t)k >= sizeof(text) - n)
                        break;
                n += (size_t)k;
        }
        if (n)
                ctl_put_str(reply, CTL_A_DIR_ATTRS, text);
}

/* ---- the module ------------------------------------------------------------- */

/* A directory on etcd says where names are; flows still go through the host
 * associations, so it needs hosts: enrolled, or taken from it (trust_keys).
 * Checked with the config (--check-config, start, SIGHUP) as init would. */
static int directory_check_conf(const conf *c, const char *runtime_dir, char *err, size_t size) {
        const conf_directory *dc = &c->directory;
        if (dc->backend != CONF_DIR_ETCD || c->n_hosts > 0 || dc->trust_keys)
                return 0;
        snprintf(err, size,
                 "line %u: [directory] backend = etcd wants the hosts it may reach enrolled ([host NAME] "
                 "sections), or trust_keys = yes",
                 dc->line);
        return -EINVAL;
}

static int directory_init(ipcfd *d) {
        const conf_directory *c = &d->conf.directory;
        the_directory = NULL;
        dir_trust_init(d);
        int r = dir_list_init(d);
        if (r < 0 || c->backend != CONF_DIR_ETCD)
                return r; /* static: the enrolled hosts are the search */
        dir_opts o;
        char addr[DIR_ADDR_MAX + 1], fp[DIR_KEY_FP_LEN + 1], key[EFCP_KEY_TEXT_LEN + 1];
        uint8_t pub[32];
        if (dir_opts_from_conf(c, &o) < 0)
                return -EINVAL;
        if (hosts_self_addr(addr, sizeof(addr), pub) < 0) {
                fprintf(stderr, "ipcfd: config line %u: [directory] backend = etcd wants the hosts it may reach "
                                "enrolled ([host NAME] sections), or trust_keys = yes\n", c->line);
                return -EINVAL;
        }
        n_host_attrs = 0;
        for (size_t i = 0; i < c->n_attrs; i++) {
                dir_attr *a = &host_attrs[n_host_attrs++];
                str_copy(a->key, c->attrs[i].key, sizeof(a->key));
                str_copy(a->val, c->attrs[i].val, sizeof(a->val));
                if (!dir_attr_valid(a->key, a->val))
                        return -EINVAL; /* conf.c checks the same: never */
        }
        dir_key_fp(pub, fp);
        efcp_key_format(pub, key, sizeof(key));
        o.host = the_hosts.self;
        o.addr = addr;
        o.fp = fp;
        o.key = key;
        r = dir_new(d->loop, &o, &the_directory);
        if (r < 0) {
                fprintf(stderr, "ipcfd: directory: %s\n", strerror(-r));
                return r;
        }
        dir_set_observer(the_directory, on_directory_change, d);
        hosts_reply_extra(dir_hosts_reply);
        r = observe(d, OBSERVE_NAME_CHANGED, publisher_on_name);
        if (r == 0)
                r = dir_search_init(d);
        log_debug("directory: etcd, %zu endpoint%s, host %s at %s (%s), %u attribute%s", o.etcd.n_endpoints,
                  plural(o.etcd.n_endpoints), o.host, addr, fp, n_host_attrs, plural(n_host_attrs));
        return r;
}

static void directory_shutdown(ipcfd *d) {
        hosts_reply_extra(NULL);
        dir_search_shutdown();
        dir_revoke(the_directory); /* every registration here ends with us: our names too, at once */
        the_directory = dir_free(the_directory);
}

static void directory_dump(ipcfd *d, char *buf, size_t size) {
        if (!the_directory) {
                snprintf(buf, size, "directory static");
                return;
        }
        dir_health h;
        dir_health_get(the_directory, &h);
        char unstable[64] = "", window[16];
        if (h.degraded)
                snprintf(unstable, sizeof(unstable), " degraded (watch lost %u times in the last %s)",
                         h.watch_losses, dir_window_text(h.watch_window_s, window));
        snprintf(buf, size, "directory %s%s%s, %zu name%s cached, %zu published", h.etcd.reachable ? "up" : "down",
                 h.live ? " live" : "", unstable, h.names, plural(h.names), h.published);
}

const daemon_module directory_module = {
        .name = "directory",
        .init = directory_init,
        .shutdown = directory_shutdown,
        .dump = directory_dump,
        .check_conf = directory_check_conf,
};
