/*
 * hosts.c — the hosts module (hosts.h): its start and end, this host's state
 * directory and key, the link's callbacks dispatched to the parts, and the
 * HOSTS request (`ipcf hosts`, `ipcf host key`).
 *
 * LOCAL ONLY, the embedded default: a config without [host] sections opens
 * no socket and makes no association; the module then serves only HOSTS
 * (this host's key, made on first use, so that it can be enrolled
 * elsewhere before any host is enrolled here).
 *
 * STATE DIRECTORY (this host's key, host.key): [daemon] state_dir, else
 * $IPCF_STATE_DIR, else $XDG_STATE_HOME/ipcf, else $HOME/.local/state/ipcf,
 * else /var/lib/ipcf for root, else the runtime directory. Made 0700 if
 * missing (its parents as needed).
 */
#include "daemon/hosts/hosts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include "common/util.h"
#include "daemon/core/client.h"
#include "daemon/core/dispatch.h"
#include "daemon/core/log.h"
#include "daemon/core/module.h"
#include "daemon/core/quota.h"
#include "daemon/hosts/relay.h"
#include "daemon/hosts/udp.h"
#include "efcp/keyfile.h"

hosts the_hosts;

static bool key_loaded;
static void (*reply_extra)(ctl_builder *reply);

void hosts_reply_extra(void (*fn)(ctl_builder *reply)) { reply_extra = fn; }
static uint8_t key_pub[32];

hostrec *hosts_rec(hpeer *p) { return p->owner; }

/* Bind recs[i] to the link's peer i. */
static void rec_init(unsigned i) {
        hostrec *h = &the_hosts.recs[i];
        h->p = hlink_peer(the_hosts.k, i);
        h->p->owner = h;
        dlist_init(&h->asking);
        dlist_init(&h->serving);
        dlist_init(&h->relays);
}

/* May hosts be enrolled from the directory (room kept for them)? */
static bool trusts_directory(const conf *c) {
        return c->directory.backend == CONF_DIR_ETCD && c->directory.trust_keys;
}

int hosts_enrol(const char *name, const uint8_t pub[32], const conf_addr *addr, hostrec **ret) {
        if (!the_hosts.k || !trusts_directory(&the_hosts.d->conf))
                return -ENOTCONN;
        hpeer *p;
        int r = hlink_peer_add(the_hosts.k, name, pub, addr, &p);
        if (r < 0)
                return r;
        unsigned i = the_hosts.n++;
        rec_init(i);
        the_hosts.recs[i].from_directory = true;
        *ret = &the_hosts.recs[i];
        return 0;
}

hostrec *hosts_by_name(const char *name) {
        for (unsigned i = 0; i < the_hosts.n; i++)
                if (strcmp(the_hosts.recs[i].p->name, name) == 0)
                        return &the_hosts.recs[i];
        return NULL;
}

/* ipcfd.host_pins: the names the "pinned" resolver (remote.c) takes. */
static bool hosts_pins(const char *host) {
        return strcmp(host, the_hosts.self) == 0 || hosts_by_name(host);
}

/* ---- state directory and key ------------------------------------------------ */

/* mkdir -p with mode 0700 for what is made. */
static int mkdirs(const char *path) {
        char tmp[PATH_MAX];
        if (str_copy(tmp, path, sizeof(tmp)) >= sizeof(tmp))
                return -ENAMETOOLONG;
        for (char *p = tmp + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = 0;
                if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static int state_dir_pick(const conf *c, const char *runtime_dir, char *out, size_t size) {
        const char *env = getenv("IPCF_STATE_DIR"), *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
        int n;
        if (c->state_dir)
                n = snprintf(out, size, "%s", c->state_dir);
        else if (env && *env)
                n = snprintf(out, size, "%s", env);
        else if (xdg && *xdg == '/')
                n = snprintf(out, size, "%s/ipcf", xdg);
        else if (home && *home == '/' && geteuid() != 0)
                n = snprintf(out, size, "%s/.local/state/ipcf", home);
        else if (geteuid() == 0)
                n = snprintf(out, size, "/var/lib/ipcf");
        else
                n = snprintf(out, size, "%s", runtime_dir);
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* This host's key pair: loaded (or made) once. */
static int hosts_key(uint8_t ret_priv[32]) {
        uint8_t priv[32];
        const ipcfd *d = the_hosts.d;
        int r = the_hosts.state_dir[0] ? 0
                                       : state_dir_pick(&d->conf, d->runtime_dir, the_hosts.state_dir,
                                                        sizeof(the_hosts.state_dir));
        if (r == 0)
                r = mkdirs(the_hosts.state_dir);
        if (r == 0) {
                int created = 0;
                r = efcp_keyfile_load(the_hosts.state_dir, priv, key_pub, &created);
                if (r == 0 && created)
                        log_info("hosts: made this host's key in %s/%s", the_hosts.state_dir, EFCP_KEYFILE_NAME);
        }
        if (r < 0) {
                log_error("hosts: key in %s: %s", the_hosts.state_dir, strerror(-r));
                return r;
        }
        key_loaded = true;
        if (ret_priv)
                memcpy(ret_priv, priv, 32);
        sodium_memzero(priv, sizeof(priv));
        return 0;
}

/* The config's [host]s against this host: a [host] of this host's own name
 * (its names would be this host's: name@NAME is looked for here), or at an
 * address the UDP socket of [hosts] listen cannot send to (an IPv6 address
 * on an IPv4 socket was sent to as the IPv4 address of its first four
 * bytes), is an error with its line; so is this host's own key, as it is
 * on disk, enrolled for another host (a key enrolled twice is
 * conf_hosts_finish's). No key yet, or none readable here (check-config run
 * by another user): no key to compare, the key made at start is new. */
static int hosts_check_conf(const conf *c, const char *runtime_dir, char *err, size_t size) {
        char self[CONF_HOST_NAME_MAX + 1];
        conf_hosts_self_name(c, self, sizeof(self));
        conf_addr listen = c->hosts_sec.listen;
        if (!listen.family)
                listen = (conf_addr){ .family = 4, .port = CONF_HOSTS_PORT_DEFAULT };
        for (size_t i = 0; i < c->n_hosts; i++) {
                const conf_host *ch = &c->hosts[i];
                const char *why = udp_unreachable(&listen, &ch->addr);
                if (strcmp(ch->name, self) == 0) {
                        snprintf(err, size, "line %u: [host %s]: this host's own name (%s)", ch->line, ch->name,
                                 c->hosts_sec.self[0] ? "[hosts] name" : "the first label of its host name");
                        return -EINVAL;
                }
                if (why) {
                        snprintf(err, size, "line %u: [host %s] address: %s", ch->line, ch->name, why);
                        return -EINVAL;
                }
        }
        char dir[PATH_MAX];
        uint8_t pub[32];
        if (c->n_hosts == 0 || state_dir_pick(c, runtime_dir, dir, sizeof(dir)) < 0 ||
            efcp_keyfile_peek(dir, pub) < 0)
                return 0;
        char text[EFCP_KEY_TEXT_LEN + 1];
        efcp_key_format(pub, text, sizeof(text));
        const char *why;
        unsigned line;
        if (conf_hosts_check_self(c, text, &why, &line) == 0)
                return 0;
        snprintf(err, size, "line %u: %s (%s/%s)", line, why, dir, EFCP_KEYFILE_NAME);
        return -EINVAL;
}

int hosts_self_addr(char *addr, size_t size, uint8_t ret_pub[32]) {
        efcp_addr a;
        if (!the_hosts.k || hlink_local_addr(the_hosts.k, &a) < 0)
                return -ENOTCONN;
        udp_addr_text(&a, addr, size);
        hlink_public_key(the_hosts.k, ret_pub);
        return 0;
}

/* ---- the link's callbacks ------------------------------------------------------- */

static void on_up(void *ctx, hpeer *p) { remote_host_up(hosts_rec(p)); }

static void on_down(void *ctx, hpeer *p, uint32_t reason) {
        hostrec *h = hosts_rec(p);
        remote_host_down(h, reason);
        serve_host_down(h);
        relays_host_down(h, reason);
}

static void on_control(void *ctx, hpeer *p, const hw_msg *m) {
        hostrec *h = hosts_rec(p);
        switch (m->type) {
        case HW_ALLOC:
        case HW_CANCEL: serve_on_control(h, m); break;
        case HW_ACCEPT:
        case HW_REFUSE: remote_on_control(h, m); break;
        case HW_DEALLOC: {
                relay *r = relay_by_rport(h, m->port);
                if (r)
                        relay_on_dealloc(r, m->code, m->reason);
                break;
        }
        case HW_CONSUMED: {
                relay *r = relay_by_rport(h, m->port);
                if (r)
                        relay_on_consumed(r, m->count);
                break;
        }
        case HW_DELIVERED: {
                relay *r = relay_by_rport(h, m->port);
                if (r)
                        relay_on_delivered(r, m->count);
                break;
        }
        default: break;
        }
}

static void on_flow_alloc(void *ctx, hpeer *p, efcp_flow *f) { remote_on_flow_alloc(hosts_rec(p), f); }

static void on_flow_ready(void *ctx, hpeer *p, efcp_flow *f) {
        void *mine = efcp_flow_user(f);
        if (mine && !remote_is_early(mine))
                relay_on_engine(mine);
}

static const hlink_ops link_ops = { on_up, on_down, on_control, on_flow_alloc, on_flow_ready };

/* ---- HOSTS ------------------------------------------------------------------------ */

static void host_entry(const hostrec *h, struct ctl_host_entry_wire *e) {
        hpeer_info pi;
        hlink_peer_info(h->p, &pi);
        memset(e, 0, sizeof(*e));
        str_copy(e->name, pi.name, sizeof(e->name));
        udp_addr_text(&pi.addr, e->addr, sizeof(e->addr));
        e->state = htole32(pi.state == HPEER_UP ? (h->p->hello_in ? 2 : 1) : pi.state == HPEER_CONNECTING ? 1 : 0);
        e->flows = htole32(h->n_relays);
        e->rtt_ns = htole64(pi.path.srtt_ns);
        e->rttvar_ns = htole64(pi.path.rttvar_ns);
        e->cwnd = htole64(pi.path.cwnd);
        e->inflight = htole64(pi.path.bytes_in_flight);
        e->dgrams_in = htole64(pi.st.dgrams_in);
        e->dgrams_out = htole64(pi.st.dgrams_out);
        e->bytes_in = htole64(pi.st.bytes_in);
        e->bytes_out = htole64(pi.st.bytes_out);
        e->lost = htole64(pi.st.pkts_lost);
        e->retransmitted = htole64(pi.st.pdus_retx);
        e->ups = htole64(pi.ups);
        e->downs = htole64(pi.downs);
}

static int hosts_on_hosts(request *rq) {
        if (!key_loaded) {
                int r = hosts_key(NULL);
                if (r < 0)
                        return r;
        }
        char text[EFCP_KEY_TEXT_LEN + 1];
        efcp_key_format(key_pub, text, sizeof(text));
        ctl_put_str(rq->reply, CTL_A_HOST_SELF, the_hosts.self);
        ctl_put_str(rq->reply, CTL_A_HOST_KEY, text);
        for (unsigned i = 0; i < the_hosts.n; i++) {
                struct ctl_host_entry_wire e;
                host_entry(&the_hosts.recs[i], &e);
                ctl_put(rq->reply, CTL_A_HOST_ENTRY, &e, sizeof(e));
        }
        if (reply_extra)
                reply_extra(rq->reply);
        return 0;
}

/* ---- the module ----------------------------------------------------------------- */

static int hosts_init(ipcfd *d) {
        static const method methods[] = { { CTL_HOSTS, hosts_on_hosts } };
        memset(&the_hosts, 0, sizeof(the_hosts));
        the_hosts.d = d;
        int r = dispatch_add(d, methods, ARRAY_SIZE(methods));
        /* Every flow tells its sides the peer's host (flows/flow.c): here
         * this one, also when it is local only. */
        conf_hosts_self_name(&d->conf, the_hosts.self, sizeof(the_hosts.self));
        d->host_name = the_hosts.self;
        if (r < 0)
                return r;
        if (d->conf.n_hosts == 0 && !trusts_directory(&d->conf)) {
                /* local only: no host is enrolled, but "name@<this host>"
                 * is still this host's "name" (remote.c, SEARCH RULES) */
                d->host_pins = hosts_pins;
                return remote_init(d);
        }
        uint8_t priv[32];
        r = hosts_key(priv);
        if (r < 0)
                return r;
        unsigned spare = trusts_directory(&d->conf) ? CONF_HOSTS_MAX - (unsigned)d->conf.n_hosts : 0;
        the_hosts.recs = calloc(d->conf.n_hosts + spare, sizeof(*the_hosts.recs));
        the_hosts.user = user_ref_uid(d, d->uid);
        if (!the_hosts.recs || !the_hosts.user) {
                sodium_memzero(priv, sizeof(priv));
                return -ENOMEM;
        }
        hlink_cfg cfg = { .c = &d->conf, .self = the_hosts.self, .listen = d->conf.hosts_sec.listen,
                          .spare = spare };
        if (!cfg.listen.family)
                cfg.listen = (conf_addr){ .family = 4, .port = CONF_HOSTS_PORT_DEFAULT };
        memcpy(cfg.private_key, priv, 32);
        sodium_memzero(priv, sizeof(priv));
        unsigned line = 0;
        r = hlink_new(d->loop, &cfg, &link_ops, NULL, &the_hosts.k, &line);
        sodium_memzero(cfg.private_key, sizeof(cfg.private_key));
        if (r == -EAFNOSUPPORT && line) {
                fprintf(stderr, "ipcfd: config line %u: a host's address cannot be reached from [hosts] listen\n",
                        line);
                return r;
        }
        if (r == -EINVAL && line) {
                fprintf(stderr, "ipcfd: config line %u: a host's key is not a usable public key "
                                "(or is this host's own, or another host's)\n", line);
                return r;
        }
        if (r < 0) {
                fprintf(stderr, "ipcfd: hosts: UDP socket: %s\n", strerror(-r));
                return r;
        }
        the_hosts.n = hlink_peers(the_hosts.k);
        for (unsigned i = 0; i < the_hosts.n; i++)
                rec_init(i);
        log_debug("hosts: %s, %u hosts enrolled, state in %s", the_hosts.self, the_hosts.n, the_hosts.state_dir);
        d->host_pins = hosts_pins;
        return remote_init(d);
}

static void hosts_shutdown(ipcfd *d) {
        d->host_pins = NULL;
        serve_shutdown();
        for (unsigned i = 0; i < the_hosts.n; i++) {
                hostrec *h = &the_hosts.recs[i];
                relays_shutdown(h);
                idmap_deinit(&h->serving_ids);
                idmap_deinit(&h->relays_by_rport);
        }
        remote_shutdown();
        if (the_hosts.k)
                hlink_close_all(the_hosts.k, HOSTS_CLOSE_BUDGET_NS);
        the_hosts.k = hlink_free(the_hosts.k);
        free(the_hosts.recs);
        the_hosts.recs = NULL;
        the_hosts.n = 0;
        the_hosts.user = user_unref(the_hosts.user);
        key_loaded = false;
}

static void hosts_dump(ipcfd *d, char *buf, size_t size) {
        unsigned up = 0, relays = 0;
        for (unsigned i = 0; i < the_hosts.n; i++) {
                up += the_hosts.recs[i].p->state == HPEER_UP;
                relays += the_hosts.recs[i].n_relays;
        }
        snprintf(buf, size, "%u/%u host%s up, %u relayed flow%s", up, the_hosts.n, plural(the_hosts.n), relays,
                 plural(relays));
}

const daemon_module hosts_module = {
        .name = "hosts",
        .init = hosts_init,
        .shutdown = hosts_shutdown,
        .dump = hosts_dump,
        .check_conf = hosts_check_conf,
};
