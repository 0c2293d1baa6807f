/*
 * record.c — directory keys and records (see record.h).
 */
#include "daemon/directory/record.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "common/ctl.h"
#include "common/util.h"
#include "daemon/directory/etcdmsg.h"

static bool host_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
               c == '_' || c == '-';
}

bool dir_host_valid(const char *host, size_t len) {
        if (len == 0 || len > DIR_HOST_MAX)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!host_char(host[i]))
                        return false;
        return true;
}

/* 1..max bytes of printable ASCII; blanks allowed or not. */
static bool printable(const char *s, size_t min, size_t max, bool blanks) {
        size_t n = 0;
        for (; s[n]; n++)
                if (n >= max || s[n] < ' ' || s[n] > '~' || (!blanks && s[n] == ' '))
                        return false;
        return n >= min;
}

bool dir_prefix_valid(const char *prefix) { return printable(prefix, 1, DIR_PREFIX_MAX, false); }
bool dir_addr_valid(const char *addr) { return printable(addr, 1, DIR_ADDR_MAX, false); }
bool dir_fp_valid(const char *fp) { return printable(fp, 0, DIR_FP_MAX, false); }
bool dir_pubkey_valid(const char *key) { return printable(key, 0, DIR_PUBKEY_MAX, false); }

bool dir_attr_valid(const char *key, const char *val) {
        size_t n = strlen(key);
        if (n == 0 || n > DIR_ATTR_KEY_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!host_char(key[i]))
                        return false;
        return printable(val, 0, DIR_ATTR_VAL_MAX, true);
}

static int key_fmt(char *out, size_t size, const char *prefix, const char *name, const char *sep,
                   const char *host) {
        int n = snprintf(out, size, "%snames/%s%s%s", prefix, name, sep, host);
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : n;
}

int dir_key_names(const char *prefix, char *out, size_t size) { return key_fmt(out, size, prefix, "", "", ""); }

int dir_key_name(const char *prefix, const char *name, char *out, size_t size) {
        return key_fmt(out, size, prefix, name, "/", "");
}

int dir_key_make(const char *prefix, const char *name, const char *host, char *out, size_t size) {
        return key_fmt(out, size, prefix, name, "/", host);
}

int dir_key_parse(const char *prefix, const uint8_t *key, size_t len, dir_record *rec) {
        size_t pl = strlen(prefix);
        if (len < pl + 6 || memcmp(key, prefix, pl) != 0 || memcmp(key + pl, "names/", 6) != 0)
                return -EINVAL;
        const char *rest = (const char *)key + pl + 6;
        size_t rl = len - pl - 6, slash = rl;
        while (slash > 0 && rest[slash - 1] != '/')
                slash--;
        if (slash < 2) /* no '/', or an empty name */
                return -EINVAL;
        size_t nl = slash - 1, hl = rl - slash;
        if (nl > IPCF_NAME_MAX || !dir_host_valid(rest + slash, hl))
                return -EINVAL;
        memcpy(rec->name, rest, nl);
        rec->name[nl] = 0;
        if (memchr(rec->name, 0, nl) || !ctl_name_valid(rec->name))
                return -EINVAL;
        memcpy(rec->host, rest + slash, hl);
        rec->host[hl] = 0;
        return 0;
}

int dir_value_make(const dir_record *rec, char *out, size_t size) {
        if (!dir_addr_valid(rec->addr) || !dir_fp_valid(rec->fp) || !dir_pubkey_valid(rec->key) ||
            rec->n_attrs > DIR_ATTRS_MAX)
                return -EINVAL;
        for (unsigned i = 0; i < rec->n_attrs; i++)
                if (!dir_attr_valid(rec->attrs[i].key, rec->attrs[i].val))
                        return -EINVAL;
        json_object *o = json_object_new_object(), *a = json_object_new_object();
        int r = -ENOMEM;
        if (!o || !a)
                goto out;
        /* Values are checked printable ASCII above: they need no escaping
         * beyond what json-c does ('"' and '\\'). */
        if (json_object_object_add(o, "v", json_object_new_int(1)) < 0 ||
            json_object_object_add(o, "addr", json_object_new_string(rec->addr)) < 0 ||
            json_object_object_add(o, "fp", json_object_new_string(rec->fp)) < 0)
                goto out;
        if (rec->key[0] && json_object_object_add(o, "key", json_object_new_string(rec->key)) < 0)
                goto out;
        for (unsigned i = 0; i < rec->n_attrs; i++)
                if (json_object_object_add(a, rec->attrs[i].key, json_object_new_string(rec->attrs[i].val)) < 0)
                        goto out;
        if (json_object_object_add(o, "attrs", a) < 0)
                goto out;
        a = NULL;
        const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        size_t n = strlen(t);
        r = n >= size || n > DIR_VALUE_MAX ? -EMSGSIZE : (int)n;
        if (r > 0)
                memcpy(out, t, n + 1);
out:
        json_object_put(a);
        json_object_put(o);
        return r;
}

/* o[key] as a string of at most max bytes into out; false if absent, of
 * another type, too long or holding a NUL. */
static bool get_str(json_object *o, const char *key, char *out, size_t max) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return false;
        size_t n = (size_t)json_object_get_string_len(v);
        const char *s = json_object_get_string(v);
        if (n > max || memchr(s, 0, n))
                return false;
        memcpy(out, s, n);
        out[n] = 0;
        return true;
}

int dir_value_parse(const uint8_t *val, size_t len, dir_record *rec) {
        if (len > DIR_VALUE_MAX)
                return -EMSGSIZE;
        json_object *o = etcd_json_parse((const char *)val, len), *v, *attrs;
        int r = -EINVAL;
        if (!o || !json_object_is_type(o, json_type_object))
                goto out;
        if (!json_object_object_get_ex(o, "v", &v) || !json_object_is_type(v, json_type_int) ||
            json_object_get_int64(v) != 1)
                goto out;
        if (!get_str(o, "addr", rec->addr, DIR_ADDR_MAX) || !dir_addr_valid(rec->addr))
                goto out;
        if (!get_str(o, "fp", rec->fp, DIR_FP_MAX) || !dir_fp_valid(rec->fp))
                goto out;
        rec->key[0] = 0;
        if (json_object_object_get_ex(o, "key", &v) &&
            (!get_str(o, "key", rec->key, DIR_PUBKEY_MAX) || !dir_pubkey_valid(rec->key)))
                goto out;
        rec->n_attrs = 0;
        if (json_object_object_get_ex(o, "attrs", &attrs)) {
                if (!json_object_is_type(attrs, json_type_object) ||
                    json_object_object_length(attrs) > DIR_ATTRS_MAX)
                        goto out;
                json_object_object_foreach(attrs, k, av) {
                        dir_attr *a = &rec->attrs[rec->n_attrs];
                        if (strlen(k) > DIR_ATTR_KEY_MAX || !json_object_is_type(av, json_type_string))
                                goto out;
                        str_copy(a->key, k, sizeof(a->key));
                        if (!get_str(attrs, k, a->val, DIR_ATTR_VAL_MAX) || !dir_attr_valid(a->key, a->val))
                                goto out;
                        rec->n_attrs++;
                }
        }
        r = 0;
out:
        json_object_put(o);
        return r;
}

int dir_split_pinned(const char *s, char name[IPCF_NAME_MAX + 1], char host[DIR_HOST_MAX + 1]) {
        const char *at = strrchr(s, '@');
        host[0] = 0;
        if (at && at > s && dir_host_valid(at + 1, strlen(at + 1)) && (size_t)(at - s) <= IPCF_NAME_MAX) {
                memcpy(name, s, (size_t)(at - s));
                name[at - s] = 0;
                if (ctl_name_valid(name)) {
                        str_copy(host, at + 1, DIR_HOST_MAX + 1);
                        return 0;
                }
        }
        if (!ctl_name_valid(s))
                return -EINVAL;
        str_copy(name, s, IPCF_NAME_MAX + 1);
        return 0;
}
