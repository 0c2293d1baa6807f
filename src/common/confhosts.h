/*
 * confhosts.h — the parts of the configuration about other hosts (conf.h is
 * the file format; docs/DAEMON.md "Hosts" the meaning): this host's name and
 * UDP port, the enrolled hosts, the search rules, the remote access policy,
 * and the impairment hook for tests. Pure parsing like conf.c (fuzzed by
 * fuzz/fuzz-conf.c): no I/O, no name service, no key decoding — a host's key
 * is kept as its base64 text and decoded by the daemon, which names the
 * line of a bad one.
 *
 *   [hosts]
 *   name = alpha                     # this host, as the others enrol it (default:
 *                                    # the first label of gethostname())
 *   listen = 0.0.0.0:7700            # the UDP socket (default 0.0.0.0:7700 once a
 *                                    # host is enrolled; no socket without hosts)
 *   dead_interval_ms = 5000          # a host silent this long is unreachable (200..600000)
 *   poll_us = 50                     # after traffic, look without sleeping this long
 *                                    # (0..10000; default 0: sleep at once)
 *   search = beta gamma              # after the local names, ask these in order
 *                                    # (default: every enrolled host, in file order)
 *   [host beta]                      # an enrolled host: its name here,
 *   address = 10.0.0.2:7700          # where it listens (optional: a host that only calls us)
 *   key = <44 characters of base64>  # its public key ("ipcf host key" on beta)
 *   [name printer*]                  # in a [name] rule (conf.h), also:
 *   hosts = beta                     # the search list for these names (empty: none)
 *   remote_allocate = *@beta user:alice@gamma uid:1000@*    # who on which host may
 *                                    # allocate these names here (default: nobody;
 *                                    # a host neither enrolled nor this one: the
 *                                    # daemon's error, conf_hosts_each_unenrolled)
 *   remote_register = user:printd    # whose registrations other hosts may reach
 *                                    # (default: any registrant's)
 *   [impair]                         # tests only: the daemon's datagram paths
 *   loss = 10%  duplicate = 1%  corrupt = 1%  reorder = 5%  delay_ms = 2  seed = 7
 *   linger_ms = 0                    # a closing flow gives up its unacknowledged
 *                                    # data after this long (0..60000; default: the
 *                                    # engine's 60 s)
 *
 * BOUNDS: CONF_HOSTS_MAX hosts, CONF_HOSTLIST_MAX names per search list.
 * Host names: 1..CONF_HOST_NAME_MAX of [A-Za-z0-9._-], starting with a letter
 * or digit. Addresses are numeric (IPv4 a.b.c.d:port, IPv6 [addr]:port).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONF_HOSTS_MAX 256
#define CONF_HOST_NAME_MAX 63
#define CONF_HOSTLIST_MAX 16
#define CONF_KEY_TEXT_LEN 44
#define CONF_DEAD_INTERVAL_DEFAULT 5000u
#define CONF_DEAD_INTERVAL_MIN 200u
#define CONF_DEAD_INTERVAL_MAX 600000u
#define CONF_HOSTS_PORT_DEFAULT 7700u
#define CONF_IMPAIR_DELAY_MAX_MS 10000u
#define CONF_IMPAIR_LINGER_MAX_MS 60000u

/* A numeric address and port. */
typedef struct conf_addr {
        uint8_t family;                 /* 0: none, 4: IPv4, 6: IPv6 */
        uint8_t ip[16];                 /* network order; IPv4 in the first 4 */
        uint16_t port;                  /* host order */
} conf_addr;

typedef struct conf_host {
        char name[CONF_HOST_NAME_MAX + 1];
        conf_addr addr;                 /* family 0: it only calls us */
        char key[CONF_KEY_TEXT_LEN + 1];/* base64 as written (the daemon decodes it) */
        unsigned line;                  /* where the section starts */
} conf_host;

/* An ordered list of enrolled hosts (indices into conf.hosts). set is false
 * when the key was absent. */
typedef struct conf_hostlist {
        bool set;
        uint8_t n;
        uint16_t idx[CONF_HOSTLIST_MAX];
        unsigned line;                  /* of the key (names are checked at the end) */
        char *names;                    /* while parsing: the value's text (heap) */
} conf_hostlist;

typedef struct conf_hosts_sec {
        char self[CONF_HOST_NAME_MAX + 1]; /* "": the daemon takes gethostname()'s first label */
        conf_addr listen;                  /* family 0: the default */
        uint32_t dead_interval_ms;
        uint32_t poll_us;                  /* busy-look this long after traffic (0: never) */
        bool poll_set;
        conf_hostlist search;
        unsigned line;                     /* 0: no [hosts] section */
} conf_hosts_sec;

/* Probabilities in parts per million. */
typedef struct conf_impair {
        bool set;
        uint32_t loss_ppm, dup_ppm, corrupt_ppm, reorder_ppm;
        uint32_t delay_ms;
        uint64_t seed;
        uint32_t linger_ms;                /* the engine's close_linger, if linger_set */
        bool linger_set;
} conf_impair;

struct conf;
struct conf_rule;
struct conf_who;

/* The sections of this file, as conf.c's section numbers. */
enum { CONF_SEC_HOSTS = 100, CONF_SEC_HOST, CONF_SEC_IMPAIR };

/* Section headers: "hosts", "host NAME", "impair" (in, trimmed, no brackets).
 * Returns 1 if in is one of ours (*ret_sec set to its conf.c enum value,
 * *why set on error), 0 if not ours; -EINVAL/-ENOMEM as conf.c's. */
int conf_hosts_section(struct conf *c, const char *in, size_t n, unsigned line, int *ret_sec,
                       const char **why);
/* A key of [hosts], [host NAME] or [impair]. */
int conf_hosts_kv(struct conf *c, int sec, const char *key, size_t kn, const char *val, size_t vn,
                  unsigned line, const char **why);
/* A [name] rule's "hosts" key (remote_allocate and remote_register are
 * principal lists: conf.c parses them). 0 or -errno. */
int conf_hostlist_parse(conf_hostlist *l, const char *val, size_t vn, unsigned line, const char **why);
/* After the whole file: resolves host names in search lists. Returns 0, or
 * -EINVAL with *why and *ret_line. */
int conf_hosts_finish(struct conf *c, const char **why, unsigned *ret_line);
void conf_hostlist_deinit(conf_hostlist *l);

/* Lookups for the daemon. */
const conf_host *conf_host_find(const struct conf *c, const char *name);

/* Is this host's own public key (self_key: its base64 text, as
 * efcp_key_format writes it) enrolled as another host's? Such a host could
 * never be told from this one (the daemon refuses to start). 0, or -EINVAL
 * with *why and the [host] section's line in *ret_line. */
int conf_hosts_check_self(const struct conf *c, const char *self_key, const char **why, unsigned *ret_line);
/* This host's name into out: [hosts] name, else the first label of
 * gethostname() as a host name ("localhost" if none) — the one function
 * here that asks the system. */
void conf_hosts_self_name(const struct conf *c, char *out, size_t size);
/* The remote principals of c's rules (remote_allocate, "P@HOST") whose HOST
 * is neither "*", an enrolled host ([host HOST]) nor self (this host's
 * name: one file may serve every host): such a principal matches nobody
 * unless a host of that name is enrolled some other way (from the
 * directory, trust_keys = yes). fn(arg, rule, principal) for each, in file
 * order, until it returns non-zero; returns that, or 0. */
int conf_hosts_each_unenrolled(const struct conf *c, const char *self,
                               int (*fn)(void *arg, const struct conf_rule *r, const struct conf_who *w),
                               void *arg);
/* "a.b.c.d:port" / "[v6]:port" into *ret; false if it is not one. */
bool conf_addr_parse(const char *text, size_t n, conf_addr *ret);
/* Host names as in the header comment. */
bool conf_host_name_valid(const char *s, size_t n);
