/*
 * etcdmsg.c — building and checking the JSON of etcd's v3 gateway (see
 * etcdmsg.h). Base64 is libsodium's (original alphabet, padded), which the
 * daemon links already.
 */
#include "daemon/directory/etcdmsg.h"

#include <errno.h>
#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define ETCD_JSON_DEPTH 16

json_object *etcd_json_parse(const char *buf, size_t len) {
        if (len > INT32_MAX)
                return NULL;
        json_tokener *tok = json_tokener_new_ex(ETCD_JSON_DEPTH);
        if (!tok)
                return NULL;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        json_object *o = json_tokener_parse_ex(tok, buf, (int)len);
        if (json_tokener_get_error(tok) != json_tokener_success) {
                json_object_put(o);
                o = NULL;
        } else if (json_tokener_get_parse_end(tok) != len) {
                /* Only blanks may follow the value. */
                for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
                        if (buf[i] != ' ' && buf[i] != '\n' && buf[i] != '\r' && buf[i] != '\t') {
                                json_object_put(o);
                                o = NULL;
                                break;
                        }
        }
        json_tokener_free(tok);
        return o;
}

/* gRPC status codes, as the gateway reports them. */
enum { G_CANCELLED = 1, G_UNKNOWN = 2, G_INVALID = 3, G_DEADLINE = 4, G_NOT_FOUND = 5,
       G_PERMISSION = 7, G_EXHAUSTED = 8, G_ABORTED = 10, G_OUT_OF_RANGE = 11,
       G_UNAVAILABLE = 14, G_UNAUTHENTICATED = 16 };

static int grpc_to_errno(int64_t code) {
        switch (code) {
        case G_INVALID: return -EINVAL;
        case G_NOT_FOUND: return -ENOENT;
        case G_PERMISSION:
        case G_UNAUTHENTICATED: return -EACCES;
        case G_OUT_OF_RANGE: return -ERANGE;
        case G_EXHAUSTED: return -ENOSPC;
        case G_UNAVAILABLE:
        case G_DEADLINE:
        case G_ABORTED: return -EAGAIN;
        default: return -EREMOTEIO;
        }
}

static void copy_msg(json_object *m, char *msg, size_t size) {
        const char *s = m && json_object_is_type(m, json_type_string) ? json_object_get_string(m) : "";
        if (!size)
                return;
        /* Keep it printable: it ends up in logs and `ipcf hosts`. */
        size_t i = 0;
        for (; s[i] && i + 1 < size; i++)
                msg[i] = s[i] >= ' ' && s[i] <= '~' ? s[i] : '?';
        msg[i] = 0;
}

int etcd_error_of(json_object *o, char *msg, size_t msg_size) {
        json_object *err, *code = NULL, *m = NULL;
        if (msg_size)
                msg[0] = 0;
        if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "error", &err))
                return 0;
        if (json_object_is_type(err, json_type_object)) {
                /* Streams: {"error": {"grpc_code": N, "message": "..."}} */
                json_object_object_get_ex(err, "grpc_code", &code);
                json_object_object_get_ex(err, "message", &m);
        } else {
                /* Calls: {"error": "...", "code": N, "message": "..."} */
                json_object_object_get_ex(o, "code", &code);
                if (!json_object_object_get_ex(o, "message", &m))
                        m = err;
        }
        copy_msg(m, msg, msg_size);
        if (msg_size && !msg[0])
                snprintf(msg, msg_size, "etcd error");
        int64_t c = code && json_object_is_type(code, json_type_int) ? json_object_get_int64(code) : G_UNKNOWN;
        return grpc_to_errno(c);
}

bool etcd_json_i64(json_object *o, const char *key, int64_t *ret) {
        json_object *v;
        *ret = 0;
        if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
                return true;
        if (json_object_is_type(v, json_type_int)) {
                errno = 0;
                *ret = json_object_get_int64(v);
                return errno == 0;
        }
        if (!json_object_is_type(v, json_type_string))
                return false;
        const char *s = json_object_get_string(v);
        size_t n = (size_t)json_object_get_string_len(v);
        if (n == 0 || n > 20)
                return false;
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (errno || end != s + n || (s[0] != '-' && (s[0] < '0' || s[0] > '9')))
                return false;
        *ret = x;
        return true;
}

/* ---- base64 -------------------------------------------------------------- */

/* A JSON string holding bytes in base64 (a new reference, NULL on ENOMEM). */
static json_object *b64_string(const void *bin, size_t len) {
        size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
        char *b = malloc(cap);
        if (!b)
                return NULL;
        sodium_bin2base64(b, cap, bin, len, sodium_base64_VARIANT_ORIGINAL);
        json_object *s = json_object_new_string(b);
        free(b);
        return s;
}

/* Decode the base64 string s into dst (at most cap bytes). */
static int b64_decode(json_object *s, uint8_t *dst, size_t cap, size_t *ret_len) {
        if (!json_object_is_type(s, json_type_string))
                return -EPROTO;
        size_t n = (size_t)json_object_get_string_len(s);
        if (n / 4 * 3 > cap + 2)
                return -EMSGSIZE;
        const char *b = json_object_get_string(s), *end = NULL;
        size_t len = 0;
        if (sodium_base642bin(dst, cap, b, n, NULL, &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0)
                return errno == ERANGE ? -EMSGSIZE : -EPROTO;
        if (end != b + n)
                return -EPROTO;
        *ret_len = len;
        return 0;
}

/* ---- request bodies ------------------------------------------------------ */

static char *body_text(json_object *o, bool ok) {
        char *t = NULL;
        if (o && ok)
                t = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return t;
}

/* o[name] = base64(bin); false on failure. */
static bool add_b64(json_object *o, const char *name, const void *bin, size_t len) {
        json_object *s = b64_string(bin, len);
        return s && json_object_object_add(o, name, s) == 0;
}

static bool add_i64(json_object *o, const char *name, int64_t v) {
        char num[24];
        snprintf(num, sizeof(num), "%lld", (long long)v);
        json_object *s = json_object_new_string(num);
        return s && json_object_object_add(o, name, s) == 0;
}

static bool add_range(json_object *o, const void *key, size_t key_len, const void *end, size_t end_len) {
        static const uint8_t zero = 0;
        if (key_len > ETCD_RANGE_KEY_MAX || end_len > ETCD_RANGE_KEY_MAX)
                return false;
        if (!add_b64(o, "key", key, key_len))
                return false;
        if (end)
                return end_len ? add_b64(o, "range_end", end, end_len) : add_b64(o, "range_end", &zero, 1);
        return true;
}

/* o[field] = true. */
static bool add_true(json_object *o, const char *field) {
        json_object *t = json_object_new_boolean(1);
        return t && json_object_object_add(o, field, t) == 0;
}

static char *body_range(const void *key, size_t key_len, const void *end, size_t end_len, int64_t limit,
                        int64_t revision, const char *flag) {
        json_object *o = json_object_new_object();
        bool ok = o && add_range(o, key, key_len, end, end_len);
        if (ok && limit > 0)
                ok = add_i64(o, "limit", limit);
        if (ok && revision > 0)
                ok = add_i64(o, "revision", revision);
        if (ok && flag)
                ok = add_true(o, flag);
        return body_text(o, ok);
}

char *etcd_body_range(const void *key, size_t key_len, const void *end, size_t end_len,
                      int64_t limit, int64_t revision) {
        return body_range(key, key_len, end, end_len, limit, revision, NULL);
}

char *etcd_body_range_serializable(const void *key, size_t key_len, const void *end, size_t end_len,
                                   int64_t limit) {
        return body_range(key, key_len, end, end_len, limit, 0, "serializable");
}

char *etcd_body_range_keys_only(const void *key, size_t key_len) {
        return body_range(key, key_len, NULL, 0, 1, 0, "keys_only");
}

char *etcd_body_put(const void *key, size_t key_len, const void *val, size_t val_len, int64_t lease) {
        json_object *o = json_object_new_object();
        bool ok = o && key_len <= ETCD_KEY_MAX && val_len <= ETCD_VALUE_MAX && add_b64(o, "key", key, key_len) &&
                  add_b64(o, "value", val, val_len);
        if (ok && lease)
                ok = add_i64(o, "lease", lease);
        return body_text(o, ok);
}

char *etcd_body_txn_puts(const char *const *keys, const char *const *vals, size_t n, int64_t lease) {
        json_object *o = json_object_new_object(), *ops = json_object_new_array();
        bool ok = o && ops;
        for (size_t i = 0; ok && i < n; i++) {
                size_t kl = strlen(keys[i]), vl = strlen(vals[i]);
                json_object *op = json_object_new_object(), *put = json_object_new_object();
                ok = op && put && kl <= ETCD_KEY_MAX && vl <= ETCD_VALUE_MAX && add_b64(put, "key", keys[i], kl) &&
                     add_b64(put, "value", vals[i], vl) && (!lease || add_i64(put, "lease", lease)) &&
                     json_object_object_add(op, "request_put", put) == 0;
                if (!ok) {
                        json_object_put(put);
                        json_object_put(op);
                        break;
                }
                ok = json_object_array_add(ops, op) == 0;
                if (!ok)
                        json_object_put(op);
        }
        if (ok)
                ok = json_object_object_add(o, "success", ops) == 0;
        else
                json_object_put(ops);
        return body_text(o, ok);
}

char *etcd_body_delete(const void *key, size_t key_len) {
        json_object *o = json_object_new_object();
        return body_text(o, o && add_range(o, key, key_len, NULL, 0));
}

char *etcd_body_lease_grant(int64_t ttl_s) {
        json_object *o = json_object_new_object();
        return body_text(o, o && add_i64(o, "TTL", ttl_s));
}

char *etcd_body_lease_id(int64_t id) {
        json_object *o = json_object_new_object();
        return body_text(o, o && add_i64(o, "ID", id));
}

char *etcd_body_watch(const void *key, size_t key_len, const void *end, size_t end_len,
                      int64_t start_revision) {
        json_object *o = json_object_new_object(), *c = json_object_new_object();
        bool ok = o && c && add_range(c, key, key_len, end, end_len);
        if (ok && start_revision > 0)
                ok = add_i64(c, "start_revision", start_revision);
        /* Events etcd sends together (a watch catching up) are split into
         * frames of at most its request bound (1.5 MiB), one event at
         * least: no frame past ETCD_FRAME_MAX, however big the values. */
        if (ok)
                ok = add_true(c, "fragment");
        if (ok)
                ok = json_object_object_add(o, "create_request", c) == 0;
        else
                json_object_put(c);
        return body_text(o, ok);
}

size_t etcd_prefix_end(const void *prefix, size_t len, uint8_t *out) {
        const uint8_t *p = prefix;
        while (len > 0 && p[len - 1] == 0xff)
                len--;
        if (len == 0)
                return 0;
        memcpy(out, p, len);
        out[len - 1]++;
        return len;
}

/* ---- answers ------------------------------------------------------------- */

int etcd_kv_decode(json_object *kv, etcd_kv *ret) {
        json_object *k, *v;
        ret->key_len = ret->value_len = 0;
        if (!json_object_is_type(kv, json_type_object))
                return -EPROTO;
        if (!json_object_object_get_ex(kv, "key", &k))
                return -EPROTO;
        /* The revisions first: a caller may still use a good key and its
         * revision when the value is refused. */
        if (!etcd_json_i64(kv, "create_revision", &ret->create_revision) ||
            !etcd_json_i64(kv, "mod_revision", &ret->mod_revision) || !etcd_json_i64(kv, "lease", &ret->lease) ||
            ret->mod_revision < 0 || ret->create_revision < 0)
                return -EPROTO;
        int r = b64_decode(k, ret->key, sizeof(ret->key), &ret->key_len);
        if (r < 0) {
                ret->key_len = 0;
                return r;
        }
        if (json_object_object_get_ex(kv, "value", &v)) {
                r = b64_decode(v, ret->value, sizeof(ret->value), &ret->value_len);
                if (r < 0) {
                        ret->value_len = 0;
                        return r;
                }
        }
        return 0;
}

int etcd_kv_key(json_object *kv, uint8_t **ret, size_t *ret_len) {
        json_object *k;
        if (!json_object_is_type(kv, json_type_object) || !json_object_object_get_ex(kv, "key", &k) ||
            !json_object_is_type(k, json_type_string))
                return -EPROTO;
        size_t cap = (size_t)json_object_get_string_len(k) / 4 * 3 + 3;
        if (cap > ETCD_RANGE_KEY_MAX + 3)
                return -EMSGSIZE;
        uint8_t *b = malloc(cap);
        if (!b)
                return -ENOMEM;
        int r = b64_decode(k, b, cap, ret_len);
        if (r < 0 || *ret_len > ETCD_RANGE_KEY_MAX) {
                free(b);
                return r < 0 ? r : -EMSGSIZE;
        }
        *ret = b;
        return 0;
}

/* header.revision of an answer, which must be there and positive. */
int etcd_header_revision(json_object *o, int64_t *ret) {
        json_object *h;
        if (!json_object_object_get_ex(o, "header", &h) || !etcd_json_i64(h, "revision", ret) || *ret <= 0)
                return -EPROTO;
        return 0;
}

int etcd_range_decode(json_object *resp, int64_t *ret_revision, bool *ret_more, json_object **ret_kvs) {
        json_object *kvs = NULL, *more = NULL;
        if (!json_object_is_type(resp, json_type_object) || etcd_header_revision(resp, ret_revision) < 0)
                return -EPROTO;
        if (json_object_object_get_ex(resp, "kvs", &kvs) && !json_object_is_type(kvs, json_type_array))
                return -EPROTO;
        if (json_object_object_get_ex(resp, "more", &more) && !json_object_is_type(more, json_type_boolean))
                return -EPROTO;
        *ret_more = more && json_object_get_boolean(more);
        *ret_kvs = kvs;
        return 0;
}

static bool get_bool(json_object *o, const char *key, bool *ret) {
        json_object *v;
        *ret = false;
        if (!json_object_object_get_ex(o, key, &v))
                return true;
        if (!json_object_is_type(v, json_type_boolean))
                return false;
        *ret = json_object_get_boolean(v);
        return true;
}

int etcd_watch_decode(json_object *res, etcd_watch_frame *ret) {
        json_object *h;
        memset(ret, 0, sizeof(*ret));
        /* The header's revision may be absent (etcd leaves it out of the
         * frame that cancels a watch on a compacted revision). */
        if (!json_object_is_type(res, json_type_object) || !json_object_object_get_ex(res, "header", &h) ||
            !etcd_json_i64(h, "revision", &ret->revision) || ret->revision < 0)
                return -EPROTO;
        if (!get_bool(res, "created", &ret->created) || !get_bool(res, "canceled", &ret->canceled) ||
            !etcd_json_i64(res, "compact_revision", &ret->compact_revision) || ret->compact_revision < 0)
                return -EPROTO;
        json_object *ev;
        if (json_object_object_get_ex(res, "events", &ev)) {
                if (!json_object_is_type(ev, json_type_array))
                        return -EPROTO;
                ret->events = ev;
        }
        return 0;
}

int etcd_event_decode(json_object *event, bool *ret_delete, etcd_kv *ret_kv) {
        json_object *t, *kv;
        if (!json_object_is_type(event, json_type_object) || !json_object_object_get_ex(event, "kv", &kv))
                return -EPROTO;
        *ret_delete = false;
        if (json_object_object_get_ex(event, "type", &t)) {
                if (json_object_is_type(t, json_type_string) && !strcmp(json_object_get_string(t), "DELETE"))
                        *ret_delete = true;
                else if (json_object_is_type(t, json_type_string) && !strcmp(json_object_get_string(t), "PUT"))
                        ;
                else if (json_object_is_type(t, json_type_int) && json_object_get_int64(t) == 1)
                        *ret_delete = true;
                else if (!(json_object_is_type(t, json_type_int) && json_object_get_int64(t) == 0))
                        return -EPROTO;
        }
        return etcd_kv_decode(kv, ret_kv);
}
