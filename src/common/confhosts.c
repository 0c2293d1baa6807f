/*
 * confhosts.c — the hosts sections of the configuration (confhosts.h).
 *
 * Pure like conf.c: works on (pointer, length) slices of the input, never
 * reads past them, and every allocation is bounded (CONF_HOSTS_MAX hosts, a
 * search list's text at most one line). Names of hosts in search lists may
 * come before the host's own section: they are kept as text while parsing
 * and resolved to indices by conf_hosts_finish(). Only conf_hosts_self_name()
 * asks the system (gethostname), for the daemon and --check-config.
 */
#include "common/confhosts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/conf.h"
#include "common/util.h"

static bool kv_is(const char *s, size_t n, const char *lit) {
        size_t l = strlen(lit);
        return n == l && memcmp(s, lit, l) == 0;
}

bool conf_host_name_valid(const char *s, size_t n) {
        if (n == 0 || n > CONF_HOST_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char ch = s[i];
                bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
                if (!alnum && (i == 0 || (ch != '.' && ch != '_' && ch != '-')))
                        return false;
        }
        return true;
}

/* A decimal port 1..65535. */
static bool port_parse(const char *s, size_t n, uint16_t *ret) {
        uint32_t v = 0;
        if (n == 0 || n > 5)
                return false;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                v = v * 10 + (uint32_t)(s[i] - '0');
        }
        if (v == 0 || v > 65535)
                return false;
        *ret = (uint16_t)v;
        return true;
}

bool conf_addr_parse(const char *text, size_t n, conf_addr *ret) {
        char ip[64];
        conf_addr a = { 0 };
        const char *colon;
        if (n == 0 || n >= sizeof(ip) + 8)
                return false;
        if (text[0] == '[') {
                const char *close = memchr(text, ']', n);
                if (!close || close + 1 >= text + n || close[1] != ':')
                        return false;
                size_t il = (size_t)(close - text - 1);
                if (il == 0 || il >= sizeof(ip))
                        return false;
                memcpy(ip, text + 1, il);
                ip[il] = 0;
                if (inet_pton(AF_INET6, ip, a.ip) != 1)
                        return false;
                a.family = 6;
                colon = close + 1;
        } else {
                colon = memrchr(text, ':', n);
                if (!colon)
                        return false;
                size_t il = (size_t)(colon - text);
                if (il == 0 || il >= sizeof(ip))
                        return false;
                memcpy(ip, text, il);
                ip[il] = 0;
                if (inet_pton(AF_INET, ip, a.ip) != 1)
                        return false;
                a.family = 4;
        }
        if (!port_parse(colon + 1, (size_t)(text + n - colon - 1), &a.port))
                return false;
        *ret = a;
        return true;
}

/* A probability: "10%", "0.5%" or "0.25" (a fraction) into parts per million. */
static bool ppm_parse(const char *s, size_t n, uint32_t *ret) {
        bool pct = n && s[n - 1] == '%';
        if (pct)
                n--;
        uint64_t whole = 0, frac = 0, scale = 1;
        size_t i = 0;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
                whole = whole * 10 + (uint64_t)(s[i] - '0');
                if (whole > 100)
                        return false;
        }
        if (i == 0)
                return false;
        if (i < n) {
                if (s[i] != '.' || i + 1 == n)
                        return false;
                for (i++; i < n; i++) {
                        if (s[i] < '0' || s[i] > '9' || scale >= 1000000)
                                return false;
                        frac = frac * 10 + (uint64_t)(s[i] - '0');
                        scale *= 10;
                }
        }
        uint64_t unit = pct ? 10000 : 1000000; /* ppm per 1 of the number */
        uint64_t v = whole * unit + frac * unit / scale;
        if (v > 1000000)
                return false;
        *ret = (uint32_t)v;
        return true;
}

void conf_hostlist_deinit(conf_hostlist *l) {
        free(l->names);
        memset(l, 0, sizeof(*l));
}

int conf_hostlist_parse(conf_hostlist *l, const char *val, size_t vn, unsigned line, const char **why) {
        if (l->set)
                return *why = "duplicate key", -EINVAL;
        /* Syntax now, names at the end (conf_hosts_finish). */
        size_t count = 0;
        for (size_t i = 0; i < vn;) {
                while (i < vn && (val[i] == ' ' || val[i] == '\t'))
                        i++;
                size_t s = i;
                while (i < vn && val[i] != ' ' && val[i] != '\t')
                        i++;
                if (i == s)
                        break;
                if (!conf_host_name_valid(val + s, i - s))
                        return *why = "bad host name in list", -EINVAL;
                if (++count > CONF_HOSTLIST_MAX)
                        return *why = "too many hosts in list (at most 16)", -EINVAL;
        }
        l->names = strndup(val, vn);
        if (!l->names)
                return -ENOMEM;
        l->set = true;
        l->line = line;
        return 0;
}

/* Resolve l's names to indices of c->hosts. */
static int hostlist_resolve(const conf *c, conf_hostlist *l, const char **why) {
        if (!l->set)
                return 0;
        const char *v = l->names;
        size_t vn = strlen(v);
        l->n = 0;
        for (size_t i = 0; i < vn;) {
                while (i < vn && (v[i] == ' ' || v[i] == '\t'))
                        i++;
                size_t s = i;
                while (i < vn && v[i] != ' ' && v[i] != '\t')
                        i++;
                if (i == s)
                        break;
                size_t k = 0;
                for (; k < c->n_hosts; k++)
                        if (kv_is(v + s, i - s, c->hosts[k].name))
                                break;
                if (k == c->n_hosts)
                        return *why = "no [host] section of that name", -EINVAL;
                for (size_t j = 0; j < l->n; j++)
                        if (l->idx[j] == k)
                                return *why = "host named twice in list", -EINVAL;
                l->idx[l->n++] = (uint16_t)k;
        }
        return 0;
}

int conf_hosts_finish(conf *c, const char **why, unsigned *ret_line) {
        for (size_t i = 0; i < c->n_hosts; i++) {
                if (!c->hosts[i].key[0]) {
                        *ret_line = c->hosts[i].line;
                        return *why = "[host] needs key", -EINVAL;
                }
        }
        /* One association per key: the daemon could not tell two hosts with
         * one key apart (and refuses to start). */
        for (size_t i = 1; i < c->n_hosts; i++)
                for (size_t j = 0; j < i; j++)
                        if (strcmp(c->hosts[i].key, c->hosts[j].key) == 0) {
                                *ret_line = c->hosts[i].line;
                                return *why = "[host] key: the same key is enrolled for another host", -EINVAL;
                        }
        if (hostlist_resolve(c, &c->hosts_sec.search, why) < 0) {
                *ret_line = c->hosts_sec.search.line;
                return -EINVAL;
        }
        for (size_t i = 0; i < c->n_rules; i++) {
                if (hostlist_resolve(c, &c->rules[i].hosts, why) < 0) {
                        *ret_line = c->rules[i].hosts.line;
                        return -EINVAL;
                }
        }
        return 0;
}

int conf_hosts_check_self(const conf *c, const char *self_key, const char **why, unsigned *ret_line) {
        /* Canonical texts (key_text_valid): one key, one text. */
        for (size_t i = 0; i < c->n_hosts; i++)
                if (strcmp(c->hosts[i].key, self_key) == 0) {
                        *ret_line = c->hosts[i].line;
                        return *why = "[host] key: this host's own key is enrolled for another host", -EINVAL;
                }
        return 0;
}

void conf_hosts_self_name(const conf *c, char *out, size_t size) {
        if (c->hosts_sec.self[0]) {
                str_copy(out, c->hosts_sec.self, size);
                return;
        }
        char hn[256] = "";
        gethostname(hn, sizeof(hn) - 1);
        size_t k = 0;
        for (size_t i = 0; hn[i] && hn[i] != '.' && k + 1 < size && k < CONF_HOST_NAME_MAX; i++)
                if (conf_host_name_valid(hn + i, 1) || (k > 0 && (hn[i] == '-' || hn[i] == '_')))
                        out[k++] = hn[i];
        out[k] = 0;
        if (k == 0)
                str_copy(out, "localhost", size);
}

int conf_hosts_each_unenrolled(const conf *c, const char *self,
                               int (*fn)(void *arg, const conf_rule *r, const conf_who *w), void *arg) {
        for (size_t i = 0; i < c->n_rules; i++) {
                const conf_acl *a = &c->rules[i].remote_allocate;
                for (size_t j = 0; j < a->n; j++) {
                        const char *host = a->who[j].host;
                        if (strcmp(host, "*") == 0 || strcmp(host, self) == 0 || conf_host_find(c, host))
                                continue;
                        int r = fn(arg, &c->rules[i], &a->who[j]);
                        if (r)
                                return r;
                }
        }
        return 0;
}

const conf_host *conf_host_find(const conf *c, const char *name) {
        for (size_t i = 0; i < c->n_hosts; i++)
                if (strcmp(c->hosts[i].name, name) == 0)
                        return &c->hosts[i];
        return NULL;
}

int conf_hosts_section(conf *c, const char *in, size_t n, unsigned line, int *ret_sec, const char **why) {
        if (kv_is(in, n, "hosts")) {
                if (c->hosts_sec.line)
                        return *why = "duplicate [hosts] section", -EINVAL;
                c->hosts_sec.line = line;
                *ret_sec = CONF_SEC_HOSTS;
                return 1;
        }
        if (kv_is(in, n, "impair")) {
                if (c->impair.set)
                        return *why = "duplicate [impair] section", -EINVAL;
                c->impair.set = true;
                *ret_sec = CONF_SEC_IMPAIR;
                return 1;
        }
        if (n > 5 && memcmp(in, "host", 4) == 0 && (in[4] == ' ' || in[4] == '\t')) {
                size_t s = 5;
                while (s < n && (in[s] == ' ' || in[s] == '\t'))
                        s++;
                if (!conf_host_name_valid(in + s, n - s))
                        return *why = "bad host name (1..63 of A-Z a-z 0-9 . _ -)", -EINVAL;
                for (size_t i = 0; i < c->n_hosts; i++)
                        if (kv_is(in + s, n - s, c->hosts[i].name))
                                return *why = "duplicate [host] section", -EINVAL;
                if (c->n_hosts == CONF_HOSTS_MAX)
                        return *why = "too many [host] sections (at most 256)", -EINVAL;
                conf_host *nh = realloc(c->hosts, (c->n_hosts + 1) * sizeof(*nh));
                if (!nh)
                        return -ENOMEM;
                c->hosts = nh;
                conf_host *h = &c->hosts[c->n_hosts++];
                memset(h, 0, sizeof(*h));
                memcpy(h->name, in + s, n - s);
                h->line = line;
                *ret_sec = CONF_SEC_HOST;
                return 1;
        }
        return 0;
}

static int kv_hosts(conf *c, const char *key, size_t kn, const char *val, size_t vn, unsigned line,
                    const char **why) {
        conf_hosts_sec *h = &c->hosts_sec;
        if (kv_is(key, kn, "name")) {
                if (h->self[0])
                        return *why = "duplicate key", -EINVAL;
                if (!conf_host_name_valid(val, vn))
                        return *why = "name: want a host name (1..63 of A-Z a-z 0-9 . _ -)", -EINVAL;
                memcpy(h->self, val, vn);
                h->self[vn] = 0;
                return 0;
        }
        if (kv_is(key, kn, "listen")) {
                if (h->listen.family)
                        return *why = "duplicate key", -EINVAL;
                if (!conf_addr_parse(val, vn, &h->listen))
                        return *why = "listen: want a.b.c.d:port or [v6]:port", -EINVAL;
                return 0;
        }
        if (kv_is(key, kn, "dead_interval_ms")) {
                uint64_t v = 0;
                if (h->dead_interval_ms)
                        return *why = "duplicate key", -EINVAL;
                for (size_t i = 0; i < vn; i++) {
                        if (val[i] < '0' || val[i] > '9' || v > CONF_DEAD_INTERVAL_MAX)
                                return *why = "dead_interval_ms: want 200..600000", -EINVAL;
                        v = v * 10 + (uint64_t)(val[i] - '0');
                }
                if (vn == 0 || v < CONF_DEAD_INTERVAL_MIN || v > CONF_DEAD_INTERVAL_MAX)
                        return *why = "dead_interval_ms: want 200..600000", -EINVAL;
                h->dead_interval_ms = (uint32_t)v;
                return 0;
        }
        if (kv_is(key, kn, "poll_us")) {
                uint64_t v = 0;
                if (h->poll_set)
                        return *why = "duplicate key", -EINVAL;
                for (size_t i = 0; i < vn; i++) {
                        if (val[i] < '0' || val[i] > '9' || v > 10000)
                                return *why = "poll_us: want 0..10000", -EINVAL;
                        v = v * 10 + (uint64_t)(val[i] - '0');
                }
                if (vn == 0 || v > 10000)
                        return *why = "poll_us: want 0..10000", -EINVAL;
                h->poll_us = (uint32_t)v;
                h->poll_set = true;
                return 0;
        }
        if (kv_is(key, kn, "search"))
                return conf_hostlist_parse(&h->search, val, vn, line, why);
        return *why = "unknown key in [hosts] (want name, listen, dead_interval_ms, poll_us or search)", -EINVAL;
}

/* 32 bytes in canonical base64, as libsodium's decoder (efcp_key_parse)
 * takes them: the last character's two padding bits are zero, so one key
 * has one text (and two [host]s with one key have equal texts). */
static bool key_text_valid(const char *s, size_t n) {
        if (n != CONF_KEY_TEXT_LEN || s[n - 1] != '=')
                return false;
        if (!strchr("AEIMQUYcgkosw048", s[n - 2]))
                return false;
        for (size_t i = 0; i + 1 < n; i++) {
                char ch = s[i];
                if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                      ch == '+' || ch == '/'))
                        return false;
        }
        return true;
}

static int kv_host(conf_host *h, const char *key, size_t kn, const char *val, size_t vn, const char **why) {
        if (kv_is(key, kn, "address")) {
                if (h->addr.family)
                        return *why = "duplicate key", -EINVAL;
                if (!conf_addr_parse(val, vn, &h->addr))
                        return *why = "address: want a.b.c.d:port or [v6]:port", -EINVAL;
                return 0;
        }
        if (kv_is(key, kn, "key")) {
                if (h->key[0])
                        return *why = "duplicate key", -EINVAL;
                if (!key_text_valid(val, vn))
                        return *why = "key: want the 44-character base64 key 'ipcf host key' prints", -EINVAL;
                /* 32 zero bytes: no key pair has it, and the daemon refuses
                 * to enrol it (efcp_host_add_peer); refused here so that
                 * --check-config says so too */
                size_t zeros = 0;
                while (zeros < vn && val[zeros] == 'A')
                        zeros++;
                if (zeros == vn - 1)
                        return *why = "key: the all-zero key is no host's public key", -EINVAL;
                memcpy(h->key, val, vn);
                h->key[vn] = 0;
                return 0;
        }
        return *why = "unknown key in [host ...] (want address or key)", -EINVAL;
}

static int kv_impair(conf_impair *m, const char *key, size_t kn, const char *val, size_t vn, const char **why) {
        static const struct {
                const char *key;
                size_t off;
        } probs[] = {
                { "loss", offsetof(conf_impair, loss_ppm) },
                { "duplicate", offsetof(conf_impair, dup_ppm) },
                { "corrupt", offsetof(conf_impair, corrupt_ppm) },
                { "reorder", offsetof(conf_impair, reorder_ppm) },
        };
        for (size_t i = 0; i < ARRAY_SIZE(probs); i++) {
                if (!kv_is(key, kn, probs[i].key))
                        continue;
                uint32_t v;
                if (!ppm_parse(val, vn, &v))
                        return *why = "want a probability: 10%, 0.5% or 0.1", -EINVAL;
                memcpy((char *)m + probs[i].off, &v, sizeof(v));
                return 0;
        }
        uint64_t v = 0;
        bool num = vn > 0 && vn <= 19;
        for (size_t i = 0; num && i < vn; i++) {
                num = val[i] >= '0' && val[i] <= '9';
                v = v * 10 + (uint64_t)(val[i] - '0');
        }
        if (kv_is(key, kn, "delay_ms")) {
                if (!num || v > CONF_IMPAIR_DELAY_MAX_MS)
                        return *why = "delay_ms: want 0..10000", -EINVAL;
                m->delay_ms = (uint32_t)v;
                return 0;
        }
        if (kv_is(key, kn, "seed")) {
                if (!num)
                        return *why = "seed: want a number", -EINVAL;
                m->seed = v;
                return 0;
        }
        if (kv_is(key, kn, "linger_ms")) {
                if (!num || v > CONF_IMPAIR_LINGER_MAX_MS)
                        return *why = "linger_ms: want 0..60000", -EINVAL;
                m->linger_ms = (uint32_t)v;
                m->linger_set = true;
                return 0;
        }
        return *why = "unknown key in [impair] (want loss, duplicate, corrupt, reorder, delay_ms, seed or "
                      "linger_ms)",
               -EINVAL;
}

int conf_hosts_kv(conf *c, int sec, const char *key, size_t kn, const char *val, size_t vn, unsigned line,
                  const char **why) {
        switch (sec) {
        case CONF_SEC_HOSTS: return kv_hosts(c, key, kn, val, vn, line, why);
        case CONF_SEC_HOST: return kv_host(&c->hosts[c->n_hosts - 1], key, kn, val, vn, why);
        default: return kv_impair(&c->impair, key, kn, val, vn, why);
        }
}
