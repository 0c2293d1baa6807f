/*
 * confcheck.c — see confcheck.h.
 *
 * "Nearest" is the edit distance (insertions, deletions, substitutions and
 * swaps of two neighbours) between what was written and each valid word; a
 * word is suggested when the distance is at most a third of its length (at
 * least 2), or when it contains what was written (4 characters or more).
 * Inputs longer than NEAR_MAX are never near anything.
 */
#include "common/confcheck.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/conf.h"
#include "common/util.h"

#define NEAR_MAX 64

const conf_key conf_keys[] = {
        { "daemon", "shared", "yes" },
        { "daemon", "state_dir", "/var/lib/ipcf" },
        { "limits", "flows_per_user", "4096" },
        { "limits", "registrations_per_user", "256" },
        { "limits", "pending_per_user", "256" },
        { "limits", "clients_per_user", "256" },
        { "limits", "unbounded_bytes_per_user", "1G" },
        { "limits", "ring_bytes_per_user", "16G" },
        { "name", "allocate", "user:root *" },
        { "name", "register", "uid:0" },
        { "name", "share", "user:root" },
        { "name", "activate", "/bin/true" },
        { "name", "activate_timeout_ms", "5000" },
        { "name", "hosts", "" },
        { "name", "remote_allocate", "*@*" },
        { "name", "remote_register", "*" },
        { "hosts", "name", "alpha" },
        { "hosts", "listen", "127.0.0.1:7700" },
        { "hosts", "dead_interval_ms", "5000" },
        { "hosts", "poll_us", "0" },
        { "hosts", "search", "" },
        { "host", "address", "127.0.0.1:7701" },
        { "host", "key", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" },
        { "impair", "loss", "1%" },
        { "impair", "duplicate", "1%" },
        { "impair", "corrupt", "1%" },
        { "impair", "reorder", "1%" },
        { "impair", "delay_ms", "2" },
        { "impair", "seed", "7" },
        { "impair", "linger_ms", "0" },
        { "directory", "backend", "etcd" },
        { "directory", "endpoints", "https://127.0.0.1:2379" },
        { "directory", "prefix", "/ipcf/" },
        { "directory", "ttl_s", "5" },
        { "directory", "request_timeout_ms", "2000" },
        { "directory", "cache_max", "65536" },
        { "directory", "watch_unstable_window_s", "60" },
        { "directory", "host_conflict_window_s", "60" },
        { "directory", "ca", "/etc/ipcf/etcd-ca.pem" },
        { "directory", "cert", "/etc/ipcf/etcd-client.pem" },
        { "directory", "key", "/etc/ipcf/etcd-client.key" },
        { "directory", "trust_keys", "no" },
        { "directory", "attributes", "zone=r1" },
};
const size_t conf_n_keys = ARRAY_SIZE(conf_keys);

const char *const conf_sections[] = { "daemon", "limits", "name PATTERN", "hosts", "host NAME", "impair",
                                      "directory" };
const size_t conf_n_sections = ARRAY_SIZE(conf_sections);

bool conf_key_known(const char *section, const char *key, size_t n) {
        for (size_t i = 0; i < conf_n_keys; i++)
                if (!strcmp(conf_keys[i].section, section) && strlen(conf_keys[i].key) == n &&
                    !memcmp(conf_keys[i].key, key, n))
                        return true;
        return false;
}

unsigned conf_seen_add(conf_seen *s, const char *key, size_t n, unsigned line) {
        if (n > CONF_KEY_NAME_MAX)
                return 0; /* no known key is that long */
        for (size_t i = 0; i < s->n; i++)
                if (strlen(s->k[i].key) == n && !memcmp(s->k[i].key, key, n))
                        return s->k[i].line;
        if (s->n < CONF_SEEN_MAX) {
                memcpy(s->k[s->n].key, key, n);
                s->k[s->n].key[n] = 0;
                s->k[s->n].line = line;
                s->n++;
        }
        return 0;
}

/* Optimal string alignment distance of a[0..an) and b[0..bn), both at most
 * NEAR_MAX bytes. */
static unsigned distance(const char *a, size_t an, const char *b, size_t bn) {
        unsigned d[NEAR_MAX + 1][NEAR_MAX + 1];
        for (size_t i = 0; i <= an; i++)
                d[i][0] = (unsigned)i;
        for (size_t j = 0; j <= bn; j++)
                d[0][j] = (unsigned)j;
        for (size_t i = 1; i <= an; i++) {
                for (size_t j = 1; j <= bn; j++) {
                        unsigned cost = a[i - 1] != b[j - 1];
                        unsigned v = MIN(d[i - 1][j] + 1, d[i][j - 1] + 1);
                        v = MIN(v, d[i - 1][j - 1] + cost);
                        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                                v = MIN(v, d[i - 2][j - 2] + 1);
                        d[i][j] = v;
                }
        }
        return d[an][bn];
}

/* Is word a good suggestion for what was written (w, n bytes)? Lower score
 * is better; returns UINT32_MAX if not near. */
static unsigned nearness(const char *w, size_t n, const char *word) {
        size_t wn = strlen(word);
        if (n == 0 || n > NEAR_MAX || wn > NEAR_MAX)
                return UINT32_MAX;
        unsigned dist = distance(w, n, word, wn);
        if (dist <= MAX(2u, (unsigned)wn / 3))
                return dist;
        if (n >= 4 && memmem(word, wn, w, n))
                return (unsigned)(wn - n);
        return UINT32_MAX;
}

/* Append n bytes of s to buf[size] at *pos, cut at the end; buf stays a
 * string. */
static void put_n(char *buf, size_t size, size_t *pos, const char *s, size_t n) {
        if (*pos + 1 >= size)
                return;
        n = MIN(n, size - 1 - *pos);
        memcpy(buf + *pos, s, n);
        *pos += n;
        buf[*pos] = 0;
}

static void put(char *buf, size_t size, size_t *pos, const char *s) {
        put_n(buf, size, pos, s, strlen(s));
}

/* ", a" / " or a" / "a": the i-th of n words of a list. */
static void put_listed(char *buf, size_t size, size_t *pos, size_t i, size_t n, const char *pre,
                       const char *word, const char *post) {
        put(buf, size, pos, i == 0 ? "" : i + 1 == n ? " or " : ", ");
        put(buf, size, pos, pre);
        put(buf, size, pos, word);
        put(buf, size, pos, post);
}

/* Append to buf the nearest of words[0..n) to what was written (w, wn
 * bytes), " (did you mean PRE WORD POST?)", or the list of them all, " (want
 * PRE a POST, ... or PRE z POST)". Only a word's first blank-separated part
 * is compared ("name PATTERN" is near "nmae"). */
static void put_nearest(char *buf, size_t size, size_t *pos, const char *w, size_t wn, const char *const *words,
                        size_t n, const char *pre, const char *post) {
        const char *best = NULL;
        unsigned best_score = UINT32_MAX;
        for (size_t i = 0; i < n; i++) {
                char first[CONF_KEY_NAME_MAX + 1];
                size_t fn = MIN(strcspn(words[i], " "), sizeof(first) - 1);
                memcpy(first, words[i], fn);
                first[fn] = 0;
                unsigned s = nearness(w, wn, first);
                if (s < best_score)
                        best_score = s, best = words[i];
        }
        if (best) {
                put(buf, size, pos, " (did you mean ");
                put_listed(buf, size, pos, 0, 1, pre, best, post);
                put(buf, size, pos, "?)");
                return;
        }
        put(buf, size, pos, " (want ");
        for (size_t i = 0; i < n; i++)
                put_listed(buf, size, pos, i, n, pre, words[i], post);
        put(buf, size, pos, ")");
}

void conf_explain_unknown_key(char *buf, size_t size, const char *section, const char *key, size_t n) {
        const char *keys[CONF_SEEN_MAX];
        size_t nk = 0, pos = 0;
        if (size == 0)
                return;
        buf[0] = 0;
        for (size_t i = 0; i < conf_n_keys && nk < CONF_SEEN_MAX; i++)
                if (!strcmp(conf_keys[i].section, section))
                        keys[nk++] = conf_keys[i].key;
        put(buf, size, &pos, "unknown key in [");
        put(buf, size, &pos, section);
        put(buf, size, &pos, "]: '");
        put_n(buf, size, &pos, key, MIN(n, (size_t)40));
        put(buf, size, &pos, "'");
        put_nearest(buf, size, &pos, key, n, keys, nk, "'", "'");
}

void conf_explain_unknown_section(char *buf, size_t size, const char *in, size_t n) {
        size_t pos = 0, word = 0;
        if (size == 0)
                return;
        buf[0] = 0;
        while (word < n && in[word] != ' ' && in[word] != '\t')
                word++;
        put(buf, size, &pos, "unknown section [");
        put_n(buf, size, &pos, in, MIN(n, (size_t)40));
        put(buf, size, &pos, "]");
        put_nearest(buf, size, &pos, in, word, conf_sections, conf_n_sections, "[", "]");
}

/* Does pattern p match every name pattern q matches? Only what can be told
 * in time linear in the patterns (a config has up to CONF_RULES_MAX of them,
 * and fnmatch(3) backtracks on each '*'): the same text; "*"; or q a literal
 * name that p matches when p is literal but for '?', or "PREFIX*". */
static bool covers(const char *p, const char *q) {
        if (!strcmp(p, q) || !strcmp(p, "*"))
                return true;
        if (strpbrk(q, "*?[\\"))
                return false;
        size_t pn = strlen(p), qn = strlen(q);
        if (!strpbrk(p, "*[\\")) {
                if (pn != qn)
                        return false;
                for (size_t i = 0; i < pn; i++)
                        if (p[i] != '?' && p[i] != q[i])
                                return false;
                return true;
        }
        return pn >= 1 && p[pn - 1] == '*' && !strpbrk(p, "?[\\") && strchr(p, '*') == p + pn - 1 &&
               qn >= pn - 1 && !memcmp(p, q, pn - 1);
}

bool conf_rule_can_apply(const conf *c, char *buf, size_t size) {
        const conf_rule *last = &c->rules[c->n_rules - 1];
        for (size_t i = 0; i + 1 < c->n_rules; i++) {
                const conf_rule *r = &c->rules[i];
                if (!covers(r->pattern, last->pattern))
                        continue;
                if (!strcmp(r->pattern, last->pattern))
                        snprintf(buf, size, "duplicate section [name %s] (first at line %u)", last->pattern, r->line);
                else
                        snprintf(buf, size,
                                 "[name %s] can never apply: [name %s] at line %u matches every name it does, "
                                 "and the first section that matches decides",
                                 last->pattern, r->pattern, r->line);
                return false;
        }
        return true;
}
