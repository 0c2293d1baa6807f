/*
 * etcdmsg.h — the JSON of etcd's v3 gateway: request bodies built, answers
 * and watch frames decoded. Pure functions (no I/O, no state), fuzzed by
 * fuzz/fuzz-directory.c.
 *
 * THE GATEWAY'S JSON is proto3's mapping: 64-bit integers as strings
 * ("revision":"42"), fields at their default value left out (no "kvs" when
 * none, no "type" for a PUT event), bytes (keys, values) in base64.
 *
 * TRUST: answers are only as trusted as etcd's access control, so every
 * field is checked: types, ranges, base64, and sizes (keys at most
 * ETCD_KEY_MAX bytes, values at most ETCD_VALUE_MAX once decoded).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

#define ETCD_KEY_MAX 1024
#define ETCD_VALUE_MAX 8192
/* The longest key a range may start at: a listing pages past any key etcd
 * can hold (its requests are at most 1.5 MiB), ours or not. */
#define ETCD_RANGE_KEY_MAX (2u << 20)

/* Parse exactly buf[0..len) as one JSON value (strict, depth-bounded).
 * Returns a new reference, or NULL if it is not exactly one JSON value. */
struct json_object *etcd_json_parse(const char *buf, size_t len);

/* Is o an error answer? 0 if not. Else a negative errno (etcd.h's table),
 * -EAGAIN for the errors another member may not have (UNAVAILABLE,
 * DEADLINE_EXCEEDED: no leader, too busy), and etcd's message in msg. */
int etcd_error_of(struct json_object *o, char *msg, size_t msg_size);

/* An int64 field (string or number). Absent: 0. Returns false if present
 * but not an integer. */
bool etcd_json_i64(struct json_object *o, const char *key, int64_t *ret);

/* header.revision of an answer (a range, a transaction): 0 and *ret, or
 * -EPROTO when it is missing or not positive. */
int etcd_header_revision(struct json_object *o, int64_t *ret);

/* Request bodies (malloc'ed JSON text, NULL on ENOMEM or a key/value past
 * its bound: ETCD_KEY_MAX and ETCD_VALUE_MAX for puts, ETCD_RANGE_KEY_MAX
 * for the keys of ranges, watches and deletes). end == NULL: no range_end; end_len == 0 with end != NULL:
 * range_end "\0" (every key from key on). */
char *etcd_body_range(const void *key, size_t key_len, const void *end, size_t end_len,
                      int64_t limit, int64_t revision);
/* The same read, serializable: the member answers from its own copy,
 * without asking the leader (it may be behind), so it answers without a
 * quorum and during a leader election. */
char *etcd_body_range_serializable(const void *key, size_t key_len, const void *end, size_t end_len,
                                   int64_t limit);
/* A linearizable read of the one key, without its value: what it costs
 * etcd does not depend on what others wrote (a heartbeat). */
char *etcd_body_range_keys_only(const void *key, size_t key_len);
char *etcd_body_put(const void *key, size_t key_len, const void *val, size_t val_len, int64_t lease);
char *etcd_body_delete(const void *key, size_t key_len);
/* A transaction without conditions: n puts (keys[i] = vals[i], NUL-terminated
 * strings), all under lease, applied at once at one revision. */
char *etcd_body_txn_puts(const char *const *keys, const char *const *vals, size_t n, int64_t lease);
char *etcd_body_lease_grant(int64_t ttl_s);
char *etcd_body_lease_id(int64_t id);          /* keepalive, revoke */
char *etcd_body_watch(const void *key, size_t key_len, const void *end, size_t end_len,
                      int64_t start_revision);

/* The end of the range of every key that starts with prefix: prefix with
 * its last byte below 0xff incremented (the bytes after it dropped). Writes
 * into out (size >= len); returns its length, 0 for "no end" (all 0xff). */
size_t etcd_prefix_end(const void *prefix, size_t len, uint8_t *out);

typedef struct etcd_kv {
        uint8_t key[ETCD_KEY_MAX];
        size_t key_len;
        uint8_t value[ETCD_VALUE_MAX];
        size_t value_len;
        int64_t create_revision, mod_revision, lease;
} etcd_kv;

/* One mvccpb.KeyValue. Returns 0, -EPROTO (malformed), -EMSGSIZE (past a
 * bound). On failure ret->key_len > 0 says the key and the revisions were
 * good (only the value was refused). */
int etcd_kv_decode(struct json_object *kv, etcd_kv *ret);
/* Only its key, whatever its value, into *ret (malloc'ed, *ret_len bytes;
 * at most ETCD_RANGE_KEY_MAX). Returns 0, -EPROTO, -EMSGSIZE, -ENOMEM. */
int etcd_kv_key(struct json_object *kv, uint8_t **ret, size_t *ret_len);

/* A range answer: its header revision, "more", and its kvs array (borrowed;
 * NULL when there are none). Returns 0 or -EPROTO. */
int etcd_range_decode(struct json_object *resp, int64_t *ret_revision, bool *ret_more,
                      struct json_object **ret_kvs);

/* A watch frame (the "result" of one gateway stream object). */
typedef struct etcd_watch_frame {
        bool created, canceled;
        int64_t revision;          /* header revision (0 when absent) */
        int64_t compact_revision;  /* > 0: the start revision was compacted */
        struct json_object *events;/* borrowed array, NULL when none */
} etcd_watch_frame;

int etcd_watch_decode(struct json_object *result, etcd_watch_frame *ret);
/* One event of frame->events: is it a DELETE, and its kv. */
int etcd_event_decode(struct json_object *event, bool *ret_delete, etcd_kv *ret_kv);
