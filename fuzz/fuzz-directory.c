/*
 * fuzz-directory.c — libFuzzer target for what the directory reads from
 * etcd (src/daemon/directory/): gateway answers (range answers, watch
 * frames, errors), their base64 keys and values, directory keys and
 * records. Every input goes through all of them:
 *   - as a record value: dir_value_parse; a record it accepts must render
 *     again (dir_value_make) and parse back to the same fields;
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

static void check_record_round_trip(const dir_record *r) {
        static char buf[DIR_VALUE_MAX + 1];
        static dir_record back;
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
