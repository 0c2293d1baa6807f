/*
 * conf.h — the daemon's configuration file: a pure parser (text in, struct
 * out; no I/O, no user database lookups) so it can be fuzzed.
 *
 * FORMAT (INI-like; '#' at the start of a line or after a blank starts a
 * comment; blank lines ignored; keys and values are separated by '=' with
 * optional blanks around):
 *
 *   [daemon]
 *   shared = yes                      # yes/no/true/false/on/off/1/0
 *   [limits]                          # per uid; integers may end in k, M, G (x1024)
 *   flows_per_user = 4096            # flow ends (both ends of a flow within one user: 2)
 *   registrations_per_user = 256
 *   pending_per_user = 256
 *   clients_per_user = 256
 *   unbounded_bytes_per_user = 1G
 *   ring_bytes_per_user = 16G          # shared memory of the other flows
 *   [name printer*]                   # an fnmatch(3) pattern over names
 *   allocate = user:alice group:lp uid:1000 gid:7 *
 *   register = user:printd
 *   share = user:printd2              # may register it beside another uid's registrations
 *   activate = /usr/bin/printd --serve
 *   activate_timeout_ms = 5000
 *   [daemon] also takes state_dir = /var/lib/ipcf (this host's key; docs/DAEMON.md);
 *   [hosts], [host NAME], [impair] and the [name] keys hosts, remote_allocate
 *   and remote_register are the hosts part: common/confhosts.h.
 *   [directory]                       # names of other hosts (docs/DAEMON.md)
 *   backend = etcd                    # static (the default: nothing to run) or etcd
 *   endpoints = https://10.0.0.1:2379 https://10.0.0.2:2379   # 1..16, blank-separated
 *   prefix = /ipcf/                   # key prefix in etcd
 *   ttl_s = 5                         # lease of this host's names, 1..3600
 *   request_timeout_ms = 2000         # 1..600000
 *   cache_max = 65536                 # cached records, 1..4194304
 *   ca = /etc/ipcf/etcd-ca.pem        # TLS: CA of etcd's certificate
 *   cert = /etc/ipcf/etcd-client.pem  # TLS: client certificate (with key)
 *   key = /etc/ipcf/etcd-client.key
 *   trust_keys = no                   # yes: host keys may come from the directory
 *   attributes = zone=r1 rack=7       # published with each of this host's names
 *
 * Rules keep their file order: the first [name] section whose pattern matches
 * a name decides for it. A missing allocate/register key in a matching section
 * means the default (only the daemon's uid and root); an empty one means the
 * same. Principals name users and groups; the daemon resolves them (policy.c).
 *
 * BOUNDS: at most CONF_RULES_MAX sections, CONF_WHO_MAX principals per list,
 * CONF_CMD_MAX bytes of activate command. Anything else is an error with the
 * line number in the message.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/confhosts.h"
#include "ipcf.h"

#define CONF_RULES_MAX 1024
#define CONF_WHO_MAX 64
#define CONF_WHO_NAME_MAX 32
#define CONF_CMD_MAX 1024
#define CONF_ACTIVATE_TIMEOUT_DEFAULT 5000u
#define CONF_ACTIVATE_TIMEOUT_MAX 3600000u

enum conf_who_kind {
        CONF_WHO_ANY = 0,   /* '*' */
        CONF_WHO_USER = 1,  /* user:NAME */
        CONF_WHO_GROUP = 2, /* group:NAME */
        CONF_WHO_UID = 3,   /* uid:N */
        CONF_WHO_GID = 4,   /* gid:N */
        CONF_WHO_NONE = 5,  /* never matches: the daemon sets it for unknown names */
};

typedef struct conf_who {
        uint8_t kind;                          /* enum conf_who_kind */
        uint32_t id;                           /* UID/GID kinds */
        char name[CONF_WHO_NAME_MAX + 1];      /* USER/GROUP kinds */
        /* remote_allocate only: the enrolled host the principal is on ("*":
         * any); the principal as that host's daemon asserts it */
        char host[CONF_HOST_NAME_MAX + 1];
} conf_who;

/* A list of principals; set is false when the key was absent. */
typedef struct conf_acl {
        bool set;
        size_t n;
        conf_who *who; /* heap array of n entries */
        unsigned line; /* of the key, 0 when absent */
} conf_acl;

typedef struct conf_rule {
        char pattern[IPCF_NAME_MAX + 1];
        conf_acl allocate;
        conf_acl reg;                  /* the "register" key */
        conf_acl share;                /* who may register the name beside another
                                        * user's registrations of it */
        char *activate;                /* heap string, NULL if none */
        uint32_t activate_timeout_ms;
        unsigned line;                 /* where the section starts */
        conf_hostlist hosts;           /* the hosts asked for these names (confhosts.h) */
        conf_acl remote_allocate;      /* principals with @host (conf_who.host) */
        conf_acl remote_reg;           /* the "remote_register" key: local principals */
} conf_rule;

typedef struct conf_limits {
        uint32_t flows_per_user;
        uint32_t registrations_per_user;
        uint32_t pending_per_user;
        uint32_t clients_per_user;
        uint64_t unbounded_bytes_per_user;
        uint64_t ring_bytes_per_user;   /* bounded/zero flows: 2 x ring size */
} conf_limits;

#define CONF_DIR_ENDPOINTS_MAX 16
#define CONF_DIR_URL_MAX 255
#define CONF_DIR_PREFIX_MAX 128
#define CONF_PATH_MAX 4095

/* [directory] attributes = KEY=VALUE ...: at most 8; KEY 1..31 bytes of
 * [A-Za-z0-9._-], VALUE 0..127 printable ASCII bytes without blanks (the
 * directory's record bounds, daemon/directory/record.h); keys distinct. */
#define CONF_DIR_ATTRS_MAX 8
#define CONF_DIR_ATTR_KEY_MAX 31
#define CONF_DIR_ATTR_VAL_MAX 127

enum conf_dir_backend { CONF_DIR_STATIC = 0, CONF_DIR_ETCD = 1 };

typedef struct conf_dir_attr {
        char key[CONF_DIR_ATTR_KEY_MAX + 1];
        char val[CONF_DIR_ATTR_VAL_MAX + 1];
} conf_dir_attr;

/* [directory]: strings are heap copies (NULL when absent); numbers 0 when
 * absent (the directory's defaults apply). */
typedef struct conf_directory {
        uint8_t backend;               /* enum conf_dir_backend */
        bool backend_set;
        size_t n_endpoints;
        char *endpoints[CONF_DIR_ENDPOINTS_MAX];
        char *prefix, *ca, *cert, *key;
        uint32_t ttl_s, request_timeout_ms, cache_max;
        uint32_t watch_unstable_window_s, host_conflict_window_s;
        bool trust_keys, trust_keys_set;
        size_t n_attrs;                /* attributes, in file order */
        conf_dir_attr attrs[CONF_DIR_ATTRS_MAX];
        unsigned line;                 /* where the section starts, 0: absent */
} conf_directory;

typedef struct conf {
        bool shared;
        char *state_dir;               /* [daemon] state_dir (heap), NULL if absent */
        conf_limits limits;
        conf_hosts_sec hosts_sec;      /* [hosts] */
        conf_host *hosts;              /* [host NAME] sections, in file order (heap) */
        size_t n_hosts;
        conf_impair impair;            /* [impair] (tests only) */
        conf_directory directory;
        conf_rule *rules;
        size_t n_rules;
} conf;

/* Fill c with the defaults (no rules; the limits of the header comment). */
void conf_init(conf *c);

/* Parse text[0..len) into *ret (which it initialises first). On error returns
 * -EINVAL, writes "line N: what" into err (err_size bytes, may be 0) and
 * leaves *ret initialised but empty; on -ENOMEM likewise. Returns 0 on
 * success; free with conf_deinit(). */
int conf_parse(const char *text, size_t len, conf *ret, char *err, size_t err_size);

/* A principal as the config writes it ("uid:1000", "user:alice@gamma",
 * "*@*") into out (size bytes, cut if short). */
void conf_who_format(const conf_who *w, char *out, size_t size);

/* Release what conf_parse() allocated; c stays a valid default conf. */
void conf_deinit(conf *c);

/* The first rule whose pattern matches name, or NULL. */
const conf_rule *conf_match(const conf *c, const char *name);
