/*
 * hosts.h — flows with other hosts: the hosts module of the daemon and what
 * its parts share (docs/DAEMON.md "Hosts", docs/ARCHITECTURE.md "The relay").
 *
 * PARTS (each its own file, all in this folder):
 *   hosts.c    the module: state dir and key, the link (link.h) and its
 *              callbacks, HOSTS (ipcf hosts, ipcf host key), per-host state;
 *   remote.c   this host asking: the resolvers "pinned" (name@host, before
 *              every local one) and "hosts" (the search rules, after them),
 *              an allocation held while the other host decides;
 *   serve.c    this host asked: an ALLOC from another daemon becomes an
 *              allocation of origin "host" (flows/alloc.h ORIGINS) walked
 *              through the local resolvers, under the remote policy;
 *   relay.c    the relay end: the daemon's side of a flow whose peer is on
 *              another host, moving messages between the shared-memory rings
 *              and an EFCP flow;
 *   policy.c   the remote access policy (remote_allocate, remote_register).
 *
 * ONE THREAD (the daemon's loop). Everything a remote daemon can make this
 * one hold is bounded per host (HOSTS_PENDING_MAX allocations deciding,
 * HLINK_FLOWS_MAX flows) and charged to the daemon's own user like any
 * allocation (its [limits]).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/hostwire.h"
#include "daemon/core/ipcfd.h"
#include "daemon/hosts/link.h"

struct alloc;
struct relay;
struct user;

/* Allocations from one host deciding here at once. */
#define HOSTS_PENDING_MAX 4096
/* At exit (SIGTERM), how long the daemon carries the close of its
 * associations (hlink_close_all): a round trip and a retry or two on a busy
 * link; a host that does not answer within it learns by the dead interval. */
#define HOSTS_CLOSE_BUDGET_NS (500 * 1000000ull)

/* What this daemon keeps per enrolled host (hpeer.owner). */
typedef struct hostrec {
        hpeer *p;
        struct dlist asking;           /* rreq.link: our allocations it is deciding */
        struct dlist serving;          /* sreq.link: its allocations deciding here */
        idmap serving_ids;             /* sreq.node: by its request id */
        uint32_t n_serving;
        struct dlist relays;           /* relay.link: flows with it */
        idmap relays_by_rport;         /* relay.rnode: by the peer's port-id */
        uint32_t n_relays;
        bool from_directory;           /* enrolled with the key the directory published (hosts_enrol) */
} hostrec;

typedef struct hosts {
        ipcfd *d;
        hlink *k;                      /* NULL: local only (no host enrolled) */
        char self[CONF_HOST_NAME_MAX + 1];
        char state_dir[PATH_MAX];
        hostrec *recs;                 /* one per enrolled host, in config order, then those
                                        * enrolled from the directory (never moved) */
        unsigned n;
        struct user *user;             /* the daemon's own: charged for remote allocations */
        uint64_t remote_refused;       /* ALLOCs refused by the policy */
} hosts;

/* The module's state (one daemon per process). */
extern hosts the_hosts;

hostrec *hosts_rec(hpeer *p);
hostrec *hosts_by_name(const char *name);

/* hosts.c: another module's part of the HOSTS reply (the directory's
 * health), or NULL: one at most. */
void hosts_reply_extra(void (*fn)(ctl_builder *reply));

/* hosts.c: enrol a host the config does not name, with the public key and
 * address the directory published for it ([directory] trust_keys = yes:
 * directory/trust.c, the only caller). It is connected to at once. Its
 * hostrec is marked from_directory. 0 and *ret, -EEXIST (that name or that
 * key is enrolled), -EINVAL (not a usable key: ours, or a bad point),
 * -ENOSPC (CONF_HOSTS_MAX hosts), -ENOTCONN (no link: trust_keys off). */
int hosts_enrol(const char *name, const uint8_t pub[32], const conf_addr *addr, hostrec **ret);

/* hosts.c: this host's UDP address (as text) and public key, for the
 * directory's records. 0, or -ENOTCONN (local only: no host enrolled). */
int hosts_self_addr(char *addr, size_t size, uint8_t ret_pub[32]);

/* remote.c */
int remote_init(ipcfd *d);
/* Ask the enrolled hosts names[0..n) (at most CONF_HOSTLIST_MAX; unknown
 * ones skipped) for a->name, in that order, as the search does: a host
 * that is down is skipped, ENOENT asks the next. The directory's answer
 * (directory/search.c). Returns as a resolver: 0 (taken), RESOLVE_NEXT
 * (none of them can be asked now), -errno. */
int remote_ask(struct alloc *a, const char *const *names, unsigned n);
void remote_on_control(hostrec *h, const hw_msg *m);
void remote_host_up(hostrec *h);
void remote_host_down(hostrec *h, uint32_t reason);
void remote_on_flow_alloc(hostrec *h, efcp_flow *f);
void remote_shutdown(void);
/* Is user the mark of a data flow the host opened before its ACCEPT? */
bool remote_is_early(const void *user);

/* serve.c */
void serve_on_control(hostrec *h, const hw_msg *m);
void serve_host_down(hostrec *h);
void serve_shutdown(void);

/* policy.c: may who (asserted by host h's daemon) allocate name here? 0 or
 * -EACCES. May a registration by the local who serve a remote allocation? */
int hosts_policy_allocate(const ipcfd *d, const char *host, const char *name, const hw_msg *m);
bool hosts_policy_register(const ipcfd *d, const char *name, const cred *who);
void hosts_policy_resolve(conf *c);

/* relay.c: see relay.h */

struct daemon_module;
extern const struct daemon_module hosts_module;
