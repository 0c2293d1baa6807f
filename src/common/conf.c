/*
 * conf.c — the configuration parser of conf.h.
 *
 * It is a pure function of its input (fuzzed by fuzz/fuzz-conf.c): it never
 * reads past text+len, accepts any bytes (NULs and other controls are
 * errors), and every allocation is bounded by the limits in conf.h.
 * Parsing is line by line over a [begin, end) slice; nothing is copied until
 * a value has been validated.
 */
#include "common/conf.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/confcheck.h"
#include "common/ring.h"
#include "common/util.h"

enum section { SEC_NONE, SEC_DAEMON, SEC_LIMITS, SEC_NAME, SEC_DIRECTORY };

/* A slice of the input. */
typedef struct slice {
        const char *p;
        size_t n;
} slice;

void conf_init(conf *c) {
        memset(c, 0, sizeof(*c));
        c->limits.flows_per_user = 4096; /* flow ends: a flow within one user counts 2 */
        c->limits.registrations_per_user = 256;
        c->limits.pending_per_user = 256;
        c->limits.clients_per_user = 256;
        c->limits.unbounded_bytes_per_user = 1ull << 30;
        c->limits.ring_bytes_per_user = 16ull << 30;
}

static void acl_deinit(conf_acl *a) {
        free(a->who);
        memset(a, 0, sizeof(*a));
}

static void directory_deinit(conf_directory *d) {
        for (size_t i = 0; i < d->n_endpoints; i++)
                free(d->endpoints[i]);
        free(d->prefix);
        free(d->ca);
        free(d->cert);
        free(d->key);
}

void conf_deinit(conf *c) {
        directory_deinit(&c->directory);
        for (size_t i = 0; i < c->n_rules; i++) {
                acl_deinit(&c->rules[i].allocate);
                acl_deinit(&c->rules[i].reg);
                acl_deinit(&c->rules[i].share);
                acl_deinit(&c->rules[i].remote_allocate);
                acl_deinit(&c->rules[i].remote_reg);
                conf_hostlist_deinit(&c->rules[i].hosts);
                free(c->rules[i].activate);
        }
        free(c->rules);
        conf_hostlist_deinit(&c->hosts_sec.search);
        free(c->hosts);
        free(c->state_dir);
        conf_init(c);
}

const conf_rule *conf_match(const conf *c, const char *name) {
        for (size_t i = 0; i < c->n_rules; i++)
                if (fnmatch(c->rules[i].pattern, name, 0) == 0)
                        return &c->rules[i];
        return NULL;
}

static bool is_blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\r'; }

static slice trim(slice s) {
        while (s.n && is_blank(s.p[0]))
                s.p++, s.n--;
        while (s.n && is_blank(s.p[s.n - 1]))
                s.n--;
        return s;
}

static bool slice_eq(slice s, const char *lit) {
        size_t n = strlen(lit);
        return s.n == n && memcmp(s.p, lit, n) == 0;
}

/* Copy a slice into a fixed buffer; false if it does not fit. */
static bool slice_copy(slice s, char *dst, size_t size) {
        if (s.n >= size)
                return false;
        memcpy(dst, s.p, s.n);
        dst[s.n] = 0;
        return true;
}

/* Parse an unsigned decimal with an optional k/M/G suffix (x1024), <= max. */
static bool parse_uint(slice s, uint64_t max, uint64_t *ret) {
        uint64_t v = 0, mult = 1;
        size_t i = 0;
        if (s.n == 0)
                return false;
        for (; i < s.n && s.p[i] >= '0' && s.p[i] <= '9'; i++) {
                if (v > (UINT64_MAX - 9) / 10)
                        return false;
                v = v * 10 + (uint64_t)(s.p[i] - '0');
        }
        if (i == 0)
                return false;
        if (i + 1 == s.n) {
                switch (s.p[i]) {
                case 'k': case 'K': mult = 1ull << 10; break;
                case 'M': mult = 1ull << 20; break;
                case 'G': mult = 1ull << 30; break;
                default: return false;
                }
        } else if (i != s.n) {
                return false;
        }
        if (v > max / mult)
                return false;
        *ret = v * mult;
        return true;
}

static bool parse_bool(slice s, bool *ret) {
        if (slice_eq(s, "yes") || slice_eq(s, "true") || slice_eq(s, "on") || slice_eq(s, "1"))
                *ret = true;
        else if (slice_eq(s, "no") || slice_eq(s, "false") || slice_eq(s, "off") || slice_eq(s, "0"))
                *ret = false;
        else
                return false;
        return true;
}

/* User and group names: the portable set plus '$' (as useradd allows). */
static bool who_name_valid(slice s) {
        if (s.n == 0 || s.n > CONF_WHO_NAME_MAX)
                return false;
        for (size_t i = 0; i < s.n; i++) {
                char ch = s.p[i];
                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                      ch == '_' || ch == '-' || ch == '.' || ch == '$'))
                        return false;
        }
        return true;
}

/* Parse one principal token. */
static bool parse_who(slice t, conf_who *w) {
        memset(w, 0, sizeof(*w));
        if (slice_eq(t, "*")) {
                w->kind = CONF_WHO_ANY;
                return true;
        }
        const char *colon = memchr(t.p, ':', t.n);
        if (!colon)
                return false;
        slice k = { t.p, (size_t)(colon - t.p) }, v = { colon + 1, t.n - k.n - 1 };
        uint64_t id;
        if (slice_eq(k, "user") || slice_eq(k, "group")) {
                if (!who_name_valid(v))
                        return false;
                w->kind = slice_eq(k, "user") ? CONF_WHO_USER : CONF_WHO_GROUP;
                return slice_copy(v, w->name, sizeof(w->name));
        }
        if (slice_eq(k, "uid") || slice_eq(k, "gid")) {
                /* No suffixes for ids: parse_uint would accept "1k". */
                for (size_t i = 0; i < v.n; i++)
                        if (v.p[i] < '0' || v.p[i] > '9')
                                return false;
                if (!parse_uint(v, UINT32_MAX - 1, &id)) /* (uid_t)-1 means "none" */
                        return false;
                w->kind = slice_eq(k, "uid") ? CONF_WHO_UID : CONF_WHO_GID;
                w->id = (uint32_t)id;
                return true;
        }
        return false;
}

/* A remote principal: PRINCIPAL@HOST (HOST an enrolled host's name or '*'),
 * or '*' alone (anyone on any host). */
static bool parse_remote_who(slice t, conf_who *w) {
        if (slice_eq(t, "*")) {
                memset(w, 0, sizeof(*w));
                w->kind = CONF_WHO_ANY;
                strcpy(w->host, "*");
                return true;
        }
        const char *at = memrchr(t.p, '@', t.n);
        if (!at)
                return false;
        slice h = { at + 1, (size_t)(t.p + t.n - at - 1) };
        if (!parse_who((slice){ t.p, (size_t)(at - t.p) }, w))
                return false;
        if (w->kind == CONF_WHO_GROUP)
                return false; /* group names are the remote host's: use gid:N@host */
        if (slice_eq(h, "*"))
                return slice_copy(h, w->host, sizeof(w->host));
        return conf_host_name_valid(h.p, h.n) && slice_copy(h, w->host, sizeof(w->host));
}

void conf_who_format(const conf_who *w, char *out, size_t size) {
        static const char *const kinds[] = { [CONF_WHO_USER] = "user", [CONF_WHO_GROUP] = "group",
                                             [CONF_WHO_UID] = "uid", [CONF_WHO_GID] = "gid" };
        int n;
        if (w->kind == CONF_WHO_UID || w->kind == CONF_WHO_GID)
                n = snprintf(out, size, "%s:%u", kinds[w->kind], (unsigned)w->id);
        else if (w->kind == CONF_WHO_USER || w->kind == CONF_WHO_GROUP)
                n = snprintf(out, size, "%s:%s", kinds[w->kind], w->name);
        else
                n = snprintf(out, size, "*");
        if (w->host[0] && n >= 0 && (size_t)n < size)
                snprintf(out + n, size - (size_t)n, "@%s", w->host);
}

/* Parse a blank-separated list of principals into a fresh acl (remote: each
 * with @host, see parse_remote_who). */
static int parse_acl(slice v, conf_acl *a, bool remote, const char **why) {
        conf_who tmp[CONF_WHO_MAX];
        size_t n = 0, i = 0;

        while (i < v.n) {
                while (i < v.n && is_blank(v.p[i]))
                        i++;
                if (i >= v.n)
                        break;
                size_t s = i;
                while (i < v.n && !is_blank(v.p[i]))
                        i++;
                if (n == CONF_WHO_MAX) {
                        *why = "too many principals";
                        return -EINVAL;
                }
                slice t = { v.p + s, i - s };
                if (remote ? !parse_remote_who(t, &tmp[n]) : !parse_who(t, &tmp[n])) {
                        *why = remote ? "bad remote principal (want *, or *, user:NAME, uid:N or gid:N "
                                        "followed by @HOST or @*)"
                                      : "bad principal (want *, user:NAME, group:NAME, uid:N or gid:N)";
                        return -EINVAL;
                }
                n++;
        }
        a->set = true;
        a->n = n;
        a->who = NULL;
        if (n) {
                a->who = malloc(n * sizeof(*a->who));
                if (!a->who)
                        return -ENOMEM;
                memcpy(a->who, tmp, n * sizeof(*a->who));
        }
        return 0;
}

static bool pattern_valid(slice s) {
        if (s.n == 0 || s.n > IPCF_NAME_MAX)
                return false;
        for (size_t i = 0; i < s.n; i++)
                if (s.p[i] <= ' ' || s.p[i] > '~')
                        return false;
        return true;
}

static int conf_error(char *err, size_t size, unsigned line, const char *why) {
        if (size)
                snprintf(err, size, "line %u: %s", line, why);
        return -EINVAL;
}

/* A string value of 1..max printable bytes without blanks into *dst (heap);
 * once per key. */
static int parse_word(slice val, size_t max, char **dst, const char *bad, const char **why) {
        if (*dst)
                return *why = "duplicate key", -EINVAL;
        if (val.n == 0 || val.n > max)
                return *why = bad, -EINVAL;
        for (size_t i = 0; i < val.n; i++)
                if (is_blank(val.p[i]))
                        return *why = bad, -EINVAL;
        *dst = strndup(val.p, val.n);
        return *dst ? 0 : -ENOMEM;
}

static bool attr_key_char(char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
               ch == '_' || ch == '-';
}

/* The next blank-separated word of val from *i (empty at the end); *i
 * moves past it. */
static slice next_word(slice val, size_t *i) {
        while (*i < val.n && is_blank(val.p[*i]))
                (*i)++;
        size_t start = *i;
        while (*i < val.n && !is_blank(val.p[*i]))
                (*i)++;
        return (slice){ val.p + start, *i - start };
}

/* attributes = KEY=VALUE ... (conf.h): each checked, none twice. An error
 * that names a word or a key is written into buf (size bytes). */
static int parse_dir_attrs(conf_directory *d, slice val, char *buf, size_t size, const char **why) {
        if (d->n_attrs)
                return *why = "duplicate key", -EINVAL;
        for (size_t i = 0;;) {
                slice w = next_word(val, &i);
                if (w.n == 0)
                        break;
                const char *eq = memchr(w.p, '=', w.n);
                size_t kn = eq ? (size_t)(eq - w.p) : w.n, vn = eq ? w.n - kn - 1 : 0;
                bool key_ok = eq && kn > 0 && kn <= CONF_DIR_ATTR_KEY_MAX;
                for (size_t k = 0; key_ok && k < kn; k++)
                        key_ok = attr_key_char(w.p[k]);
                int wn = w.n > 64 ? 64 : (int)w.n;
                if (!key_ok) {
                        snprintf(buf, size, "attributes: '%.*s': want KEY=VALUE, KEY of 1..31 letters, digits, "
                                            "'.', '_' or '-'", wn, w.p);
                        return *why = buf, -EINVAL;
                }
                for (size_t k = 0; k < vn; k++)
                        if (eq[1 + k] <= ' ' || eq[1 + k] > '~') {
                                snprintf(buf, size, "attributes: '%.*s': a value is printable ASCII", wn, w.p);
                                return *why = buf, -EINVAL;
                        }
                if (vn > CONF_DIR_ATTR_VAL_MAX) {
                        snprintf(buf, size, "attributes: '%.*s': value longer than 127 bytes", (int)kn, w.p);
                        return *why = buf, -EINVAL;
                }
                for (size_t j = 0; j < d->n_attrs; j++)
                        if (strlen(d->attrs[j].key) == kn && !memcmp(d->attrs[j].key, w.p, kn)) {
                                snprintf(buf, size, "attributes: duplicate attribute '%.*s'", (int)kn, w.p);
                                return *why = buf, -EINVAL;
                        }
                if (d->n_attrs == CONF_DIR_ATTRS_MAX)
                        return *why = "attributes: at most 8", -EINVAL;
                conf_dir_attr *a = &d->attrs[d->n_attrs++];
                slice_copy((slice){ w.p, kn }, a->key, sizeof(a->key));
                slice_copy((slice){ eq + 1, vn }, a->val, sizeof(a->val));
        }
        if (!d->n_attrs)
                return *why = "attributes: want KEY=VALUE ...", -EINVAL;
        return 0;
}

/* [directory] keys; buf (size bytes) for an error text that names what it
 * quotes. */
static int parse_directory_kv(conf_directory *d, slice key, slice val, char *buf, size_t size, const char **why) {
        uint64_t v;
        if (slice_eq(key, "attributes"))
                return parse_dir_attrs(d, val, buf, size, why);
        if (slice_eq(key, "backend")) {
                if (d->backend_set)
                        return *why = "duplicate key", -EINVAL;
                d->backend_set = true;
                if (slice_eq(val, "static"))
                        d->backend = CONF_DIR_STATIC;
                else if (slice_eq(val, "etcd"))
                        d->backend = CONF_DIR_ETCD;
                else
                        return *why = "backend: want static or etcd", -EINVAL;
                return 0;
        }
        if (slice_eq(key, "endpoints")) {
                if (d->n_endpoints)
                        return *why = "duplicate key", -EINVAL;
                for (size_t i = 0;;) {
                        slice u = next_word(val, &i);
                        if (u.n == 0)
                                break;
                        bool scheme = (u.n > 7 && !memcmp(u.p, "http://", 7)) || (u.n > 8 && !memcmp(u.p, "https://", 8));
                        if (!scheme || u.n > CONF_DIR_URL_MAX)
                                return *why = "endpoints: want http:// or https:// URLs", -EINVAL;
                        if (d->n_endpoints == CONF_DIR_ENDPOINTS_MAX)
                                return *why = "endpoints: at most 16", -EINVAL;
                        if (!(d->endpoints[d->n_endpoints] = strndup(u.p, u.n)))
                                return -ENOMEM;
                        d->n_endpoints++;
                }
                if (!d->n_endpoints)
                        return *why = "endpoints: want at least one URL", -EINVAL;
                return 0;
        }
        if (slice_eq(key, "prefix"))
                return parse_word(val, CONF_DIR_PREFIX_MAX, &d->prefix, "prefix: want 1..128 bytes, no blanks", why);
        if (slice_eq(key, "ca"))
                return parse_word(val, CONF_PATH_MAX, &d->ca, "ca: want a file name", why);
        if (slice_eq(key, "cert"))
                return parse_word(val, CONF_PATH_MAX, &d->cert, "cert: want a file name", why);
        if (slice_eq(key, "key"))
                return parse_word(val, CONF_PATH_MAX, &d->key, "key: want a file name", why);
        if (slice_eq(key, "trust_keys")) {
                if (d->trust_keys_set)
                        return *why = "duplicate key", -EINVAL;
                if (!parse_bool(val, &d->trust_keys))
                        return *why = "trust_keys: want yes or no", -EINVAL;
                d->trust_keys_set = true;
                return 0;
        }
        static const struct {
                const char *key;
                size_t off;
                uint64_t min, max;
                const char *bad;
        } nums[] = {
                { "ttl_s", offsetof(conf_directory, ttl_s), 1, 3600, "ttl_s: want 1..3600" },
                { "request_timeout_ms", offsetof(conf_directory, request_timeout_ms), 1, 600000,
                  "request_timeout_ms: want 1..600000" },
                { "cache_max", offsetof(conf_directory, cache_max), 1, 4194304, "cache_max: want 1..4194304" },
                /* the directory's DIR_WINDOW_MIN_S..DIR_WINDOW_MAX_S */
                { "watch_unstable_window_s", offsetof(conf_directory, watch_unstable_window_s), 10, 3600,
                  "watch_unstable_window_s: want 10..3600" },
                { "host_conflict_window_s", offsetof(conf_directory, host_conflict_window_s), 10, 3600,
                  "host_conflict_window_s: want 10..3600" },
        };
        for (size_t i = 0; i < ARRAY_SIZE(nums); i++) {
                if (!slice_eq(key, nums[i].key))
                        continue;
                uint32_t x;
                memcpy(&x, (char *)d + nums[i].off, sizeof(x));
                if (x)
                        return *why = "duplicate key", -EINVAL;
                if (!parse_uint(val, nums[i].max, &v) || v < nums[i].min)
                        return *why = nums[i].bad, -EINVAL;
                x = (uint32_t)v;
                memcpy((char *)d + nums[i].off, &x, sizeof(x));
                return 0;
        }
        return *why = "unknown key in [directory]", -EINVAL;
}

/* Does the error text why start with "KEY:" (it names its key already)? */
static bool names_key(const char *why, slice key) {
        return strncmp(why, key.p, key.n) == 0 && why[key.n] == ':';
}

/* One "key = value" line of a section. Errors set *why (static text, or
 * buf's size bytes) and return -EINVAL, or return -ENOMEM. */
static int parse_kv(conf *c, int sec, slice key, slice val, unsigned line, char *buf, size_t size,
                    const char **why) {
        uint64_t v;
        if (sec >= CONF_SEC_HOSTS)
                return conf_hosts_kv(c, sec, key.p, key.n, val.p, val.n, line, why);
        if (sec == SEC_DIRECTORY)
                return parse_directory_kv(&c->directory, key, val, buf, size, why);
        if (sec == SEC_DAEMON) {
                if (slice_eq(key, "shared")) {
                        if (!parse_bool(val, &c->shared))
                                return *why = "shared: want yes or no", -EINVAL;
                        return 0;
                }
                if (slice_eq(key, "state_dir")) {
                        if (c->state_dir)
                                return *why = "duplicate key", -EINVAL;
                        if (val.n == 0 || val.n > 1024 || val.p[0] != '/')
                                return *why = "state_dir: want an absolute path", -EINVAL;
                        c->state_dir = strndup(val.p, val.n);
                        return c->state_dir ? 0 : -ENOMEM;
                }
                return *why = "unknown key in [daemon]", -EINVAL;
        }
        if (sec == SEC_LIMITS) {
                /* Each limit with the least value that still lets someone
                 * work: below it the daemon would refuse everyone, root too
                 * (quotas apply to every uid), so it is refused here. */
                static const struct {
                        const char *key;
                        size_t off;
                        uint64_t min;
                        const char *below_min;
                } u32keys[] = {
                        { "flows_per_user", offsetof(conf_limits, flows_per_user), 2,
                          "flows_per_user: below 2 no flow between two processes of one user could be made "
                          "(each holds an end)" },
                        { "registrations_per_user", offsetof(conf_limits, registrations_per_user), 1,
                          "registrations_per_user: 0 would refuse every registration, root's too" },
                        { "pending_per_user", offsetof(conf_limits, pending_per_user), 1,
                          "pending_per_user: 0 would refuse every allocation, root's too" },
                        { "clients_per_user", offsetof(conf_limits, clients_per_user), 1,
                          "clients_per_user: 0 would refuse every connection, root's too" },
                };
                for (size_t i = 0; i < ARRAY_SIZE(u32keys); i++) {
                        if (slice_eq(key, u32keys[i].key)) {
                                if (!parse_uint(val, UINT32_MAX, &v))
                                        return *why = "bad number", -EINVAL;
                                if (v < u32keys[i].min)
                                        return *why = u32keys[i].below_min, -EINVAL;
                                uint32_t x = (uint32_t)v;
                                memcpy((char *)&c->limits + u32keys[i].off, &x, sizeof(x));
                                return 0;
                        }
                }
                if (slice_eq(key, "unbounded_bytes_per_user") || slice_eq(key, "ring_bytes_per_user")) {
                        if (!parse_uint(val, UINT64_MAX, &v))
                                return *why = "bad number", -EINVAL;
                        if (slice_eq(key, "ring_bytes_per_user")) {
                                if (v < 2 * (uint64_t)RING_MIN)
                                        return *why = "ring_bytes_per_user: below 8k no bounded or zero-capacity "
                                                      "flow would fit (each takes two rings of at least 4k)",
                                               -EINVAL;
                                c->limits.ring_bytes_per_user = v;
                        } else {
                                c->limits.unbounded_bytes_per_user = v;
                        }
                        return 0;
                }
                return *why = "unknown key in [limits]", -EINVAL;
        }
        /* SEC_NAME: the rule is the last one added. */
        conf_rule *r = &c->rules[c->n_rules - 1];
        if (slice_eq(key, "allocate") || slice_eq(key, "register") || slice_eq(key, "share") ||
            slice_eq(key, "remote_register")) {
                conf_acl *a = slice_eq(key, "allocate") ? &r->allocate
                              : slice_eq(key, "register") ? &r->reg
                              : slice_eq(key, "share")    ? &r->share
                                                          : &r->remote_reg;
                if (a->set)
                        return *why = "duplicate key", -EINVAL;
                a->line = line;
                return parse_acl(val, a, false, why);
        }
        if (slice_eq(key, "remote_allocate")) {
                if (r->remote_allocate.set)
                        return *why = "duplicate key", -EINVAL;
                r->remote_allocate.line = line;
                return parse_acl(val, &r->remote_allocate, true, why);
        }
        if (slice_eq(key, "hosts"))
                return conf_hostlist_parse(&r->hosts, val.p, val.n, line, why);
        if (slice_eq(key, "activate")) {
                if (r->activate)
                        return *why = "duplicate key", -EINVAL;
                if (val.n == 0 || val.n > CONF_CMD_MAX)
                        return *why = "activate: want a command of 1..1024 bytes", -EINVAL;
                r->activate = strndup(val.p, val.n);
                return r->activate ? 0 : -ENOMEM;
        }
        if (slice_eq(key, "activate_timeout_ms")) {
                if (!parse_uint(val, CONF_ACTIVATE_TIMEOUT_MAX, &v) || v == 0)
                        return *why = "activate_timeout_ms: want 1..3600000", -EINVAL;
                r->activate_timeout_ms = (uint32_t)v;
                return 0;
        }
        return *why = "unknown key in [name ...]", -EINVAL;
}

/* A "[...]" header line (already trimmed, brackets included). */
static int parse_section(conf *c, slice s, unsigned line, int *sec, const char **why) {
        slice in = trim((slice){ s.p + 1, s.n - 2 });
        int hr = conf_hosts_section(c, in.p, in.n, line, sec, why);
        if (hr != 0)
                return hr < 0 ? hr : 0;
        if (slice_eq(in, "daemon")) {
                *sec = SEC_DAEMON;
                return 0;
        }
        if (slice_eq(in, "limits")) {
                *sec = SEC_LIMITS;
                return 0;
        }
        if (slice_eq(in, "directory")) {
                if (c->directory.line)
                        return *why = "duplicate [directory] section", -EINVAL;
                c->directory.line = line;
                *sec = SEC_DIRECTORY;
                return 0;
        }
        if (in.n > 4 && memcmp(in.p, "name", 4) == 0 && is_blank(in.p[4])) {
                slice pat = trim((slice){ in.p + 5, in.n - 5 });
                if (!pattern_valid(pat))
                        return *why = "bad name pattern (1..127 printable bytes, no blanks)", -EINVAL;
                if (c->n_rules == CONF_RULES_MAX)
                        return *why = "too many [name] sections", -EINVAL;
                conf_rule *nr = realloc(c->rules, (c->n_rules + 1) * sizeof(*nr));
                if (!nr)
                        return -ENOMEM;
                c->rules = nr;
                conf_rule *r = &c->rules[c->n_rules++];
                memset(r, 0, sizeof(*r));
                slice_copy(pat, r->pattern, sizeof(r->pattern));
                r->activate_timeout_ms = CONF_ACTIVATE_TIMEOUT_DEFAULT;
                r->line = line;
                *sec = SEC_NAME;
                return 0;
        }
        return *why = "unknown section (want [daemon], [limits], [name PATTERN], [directory], [hosts], [host NAME] or "
                      "[impair])",
               -EINVAL;
}

/* What a [directory] section lacks as a whole, or NULL. */
static const char *directory_incomplete(const conf_directory *d) {
        if (d->backend == CONF_DIR_ETCD && d->n_endpoints == 0)
                return "[directory] backend = etcd wants endpoints";
        if (!d->cert != !d->key)
                return "[directory] cert and key go together";
        return NULL;
}

/* The first word of a section's header, as confcheck.h names sections. */
static const char *section_word(int sec) {
        switch (sec) {
        case SEC_DAEMON: return "daemon";
        case SEC_LIMITS: return "limits";
        case SEC_NAME: return "name";
        case CONF_SEC_HOSTS: return "hosts";
        case CONF_SEC_HOST: return "host";
        case CONF_SEC_IMPAIR: return "impair";
        case SEC_DIRECTORY: return "directory";
        default: return "";
        }
}

/* The driver: split into lines, reject control bytes, strip comments and
 * blanks, then hand each line to the section or key parser. The first error
 * stops the parse; its line number is the current one. Around the parsers
 * (confcheck.h): a known key given twice in a section is an error naming
 * where it was first; an unknown key or section is named with the nearest
 * valid one; a [name] section an earlier one hides is an error. */
int conf_parse(const char *text, size_t len, conf *ret, char *err, size_t err_size) {
        int sec = SEC_NONE;
        unsigned line = 0;
        size_t pos = 0;
        int r = 0;
        const char *why = NULL;
        char why_buf[512], kv_buf[256]; /* kv_buf: what a key's parser writes (parse_kv) */
        /* Keys met: in all [daemon] sections, all [limits], the current other. */
        conf_seen seen_daemon = { 0 }, seen_limits = { 0 }, seen_section = { 0 }, *seen = &seen_section;

        conf_init(ret);
        if (err_size)
                err[0] = 0;
        while (pos < len && r == 0) {
                const char *nl = memchr(text + pos, '\n', len - pos);
                size_t end = nl ? (size_t)(nl - text) : len;
                slice s = { text + pos, end - pos };
                pos = end + 1;
                line++;

                /* Only printable bytes and blanks: no NULs, no escapes. */
                for (size_t i = 0; i < s.n; i++) {
                        unsigned char ch = (unsigned char)s.p[i];
                        if ((ch < ' ' && ch != '\t' && ch != '\r') || ch == 0x7f) {
                                why = "control character";
                                r = -EINVAL;
                                break;
                        }
                }
                if (r)
                        break;
                /* Strip a comment: '#' at the start or after a blank. */
                for (size_t i = 0; i < s.n; i++) {
                        if (s.p[i] == '#' && (i == 0 || is_blank(s.p[i - 1]))) {
                                s.n = i;
                                break;
                        }
                }
                s = trim(s);
                if (s.n == 0)
                        continue;
                if (s.p[0] == '[') {
                        if (s.p[s.n - 1] != ']' || s.n < 2) {
                                why = "unterminated section header";
                                r = -EINVAL;
                                break;
                        }
                        r = parse_section(ret, s, line, &sec, &why);
                        if (r == -EINVAL && why && !strncmp(why, "unknown section", 15)) {
                                slice in = trim((slice){ s.p + 1, s.n - 2 });
                                conf_explain_unknown_section(why_buf, sizeof(why_buf), in.p, in.n);
                                why = why_buf;
                        }
                        if (r == 0 && sec == SEC_NAME && !conf_rule_can_apply(ret, why_buf, sizeof(why_buf))) {
                                why = why_buf;
                                r = -EINVAL;
                        }
                        seen_section.n = 0;
                        seen = sec == SEC_DAEMON ? &seen_daemon : sec == SEC_LIMITS ? &seen_limits : &seen_section;
                        continue;
                }
                const char *eq = memchr(s.p, '=', s.n);
                if (!eq) {
                        why = "want key = value";
                        r = -EINVAL;
                        break;
                }
                if (sec == SEC_NONE) {
                        why = "key outside a section";
                        r = -EINVAL;
                        break;
                }
                slice key = trim((slice){ s.p, (size_t)(eq - s.p) });
                slice val = trim((slice){ eq + 1, (size_t)(s.p + s.n - eq - 1) });
                if (conf_key_known(section_word(sec), key.p, key.n)) {
                        unsigned first = conf_seen_add(seen, key.p, key.n, line);
                        if (first) {
                                snprintf(why_buf, sizeof(why_buf), "duplicate key '%.*s' (first at line %u)",
                                         (int)key.n, key.p, first);
                                why = why_buf;
                                r = -EINVAL;
                                break;
                        }
                }
                r = parse_kv(ret, sec, key, val, line, kv_buf, sizeof(kv_buf), &why);
                if (r == -EINVAL && why && !strncmp(why, "unknown key", 11)) {
                        conf_explain_unknown_key(why_buf, sizeof(why_buf), section_word(sec), key.p, key.n);
                        why = why_buf;
                } else if (r == -EINVAL && why && !names_key(why, key)) {
                        /* Every error of a value names its key and shows
                         * the value ("clients_per_user: '1o': bad number"). */
                        snprintf(why_buf, sizeof(why_buf), "%.*s: '%.*s': %s", (int)key.n, key.p,
                                 val.n > 64 ? 64 : (int)val.n, val.p, why);
                        why = why_buf;
                }
        }
        if (r == 0)
                r = conf_hosts_finish(ret, &why, &line);
        if (r == 0 && (why = directory_incomplete(&ret->directory)) != NULL) {
                line = ret->directory.line;
                r = -EINVAL;
        }
        if (r == -ENOMEM)
                why = "out of memory";
        if (r < 0) {
                conf_deinit(ret);
                conf_error(err, err_size, line, why ? why : "invalid");
                return r;
        }
        return 0;
}
