/*
 * fuzz-directory.c — libFuzzer target for what the directory reads from
 * etcd (src/daemon/directory/): gateway answers (range answers, watch
 * frames, errors), their base64 keys and values, directory keys and
 * records. Every input goes through all of them:
 *   - as a record value: dir_value_parse; a record it accepts holds at
 *     most DIR_ATTRS_MAX attributes, each valid (dir_attr_valid), no key
 *     twice, and must render again (dir_value_make) and parse back to the
 *     same fields, attributes included (key for key, value for value);
 *   - as a key: dir_key_parse;
 *   - as JSON: etcd_error_of, etcd_range_decode + etcd_kv_key and
 *     etcd_kv_decode of each kv
 *     + the key and value parsers on what decodes, etcd_watch_decode +
 *     etcd_event_decode of each event.
 * Seeds: fuzz/corpus/fuzz-directory/.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/directory/etcdmsg.h"
#include "daemon/directory/record.h"

/* What a parsed record promises: its attributes bounded, valid, distinct. */
static void check_record_attrs(const dir_record *r) {
        if (r->n_attrs > DIR_ATTRS_MAX)
                abort();
        for (unsigned i = 0; i < r->n_attrs; i++) {
                if (!dir_attr_valid(r->attrs[i].key, r->attrs[i].val))
                        abort();
                for (unsigned j = 0; j < i; j++)
                        if (!strcmp(r->attrs[i].key, r->attrs[j].key))
                                abort();
        }
}

/* The attribute of rec named key, or NULL. */
static const dir_attr *attr_named(const dir_record *rec, const char *key) {
        for (unsigned i = 0; i < rec->n_attrs; i++)
                if (!strcmp(rec->attrs[i].key, key))
                        return &rec->attrs[i];
        return NULL;
}

static void check_record_round_trip(const dir_record *r) {
        static char buf[DIR_VALUE_MAX + 1];
        static dir_record back;
        check_record_attrs(r);
        int n = dir_value_make(r, buf, sizeof(buf));
        if (n < 0) {
                if (n == -EMSGSIZE)
                        return; /* escapes can make it longer than what came in */
                abort();
        }
        memset(&back, 0, sizeof(back));
        if (dir_value_parse((const uint8_t *)buf, (size_t)n, &back) != 0)
                abort();
        if (strcmp(back.addr, r->addr) || strcmp(back.fp, r->fp) || strcmp(back.key, r->key) ||
            back.n_attrs != r->n_attrs)
                abort();
        for (unsigned i = 0; i < r->n_attrs; i++) {
                const dir_attr *b = attr_named(&back, r->attrs[i].key);
                if (!b || strcmp(b->val, r->attrs[i].val))
                        abort();
        }
}

static void kv_records(const etcd_kv *kv) {
        static dir_record rec;
        if (dir_key_parse("/ipcf/", kv->key, kv->key_len, &rec) == 0 &&
            dir_value_parse(kv->value, kv->value_len, &rec) == 0)
                check_record_round_trip(&rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static dir_record rec;
        static etcd_kv kv;
        memset(&rec, 0, sizeof(rec));
        if (dir_value_parse(data, size, &rec) == 0)
                check_record_round_trip(&rec);
        dir_key_parse("/ipcf/", data, size, &rec);

        json_object *o = etcd_json_parse((const char *)data, size), *kvs, *res;
        if (!o)
                return 0;
        char msg[160];
        etcd_error_of(o, msg, sizeof(msg));
        int64_t rev;
        bool more;
        if (etcd_range_decode(o, &rev, &more, &kvs) == 0 && kvs)
                for (size_t i = 0; i < json_object_array_length(kvs); i++) {
                        uint8_t *key;
                        size_t len;
                        if (etcd_kv_key(json_object_array_get_idx(kvs, i), &key, &len) == 0)
                                free(key);
                        if (etcd_kv_decode(json_object_array_get_idx(kvs, i), &kv) == 0)
                                kv_records(&kv);
                }
        etcd_watch_frame f;
        if (!json_object_object_get_ex(o, "result", &res))
                res = o;
        if (etcd_watch_decode(res, &f) == 0 && f.events)
                for (size_t i = 0; i < json_object_array_length(f.events); i++) {
                        bool del;
                        if (etcd_event_decode(json_object_array_get_idx(f.events, i), &del, &kv) == 0)
                                kv_records(&kv);
                }
        int64_t x;
        etcd_json_i64(o, "revision", &x);
        json_object_put(o);
        return 0;
}
