/*
 * record.h — what the directory keeps in etcd: one key per (name, host), its
 * value a small JSON record. Pure functions (fuzzed by fuzz/fuzz-directory.c).
 *
 *   key:   PREFIX "names/" NAME "/" HOST
 *   value: {"v":1,"addr":"ADDR","fp":"FINGERPRINT","key":"KEY","attrs":{"K":"V",...}}
 *
 * NAME is an ipcf name (ctl_name_valid: printable ASCII, no blank, may hold
 * '/' and '@'); HOST a host name ([A-Za-z0-9._-], 1..DIR_HOST_MAX), so the
 * last '/' of a key splits them. Names first: a cold lookup of one name is
 * one range read (PREFIX "names/" NAME "/"), and etcd's RBAC can grant
 * publishing per name prefix. ADDR is the host's address for host
 * associations ("host:port", opaque here), FINGERPRINT its public key's
 * fingerprint (opaque, may be empty), KEY its full public key as text
 * (base64; optional: absent is ""), which a daemon with trust_keys = yes
 * may enrol the host with (module.c, trust.c) once it matches FINGERPRINT.
 * Unknown value fields are ignored (a later version may add some); "v"
 * must be 1.
 *
 * TRUST: keys and values come from etcd, so from anyone etcd lets write
 * under PREFIX. Everything is checked: lengths, characters, JSON types, the
 * number of attributes; a record that fails is rejected whole.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipcf.h"

#define DIR_PREFIX_MAX 128
#define DIR_HOST_MAX 63
#define DIR_ADDR_MAX 255
#define DIR_FP_MAX 128
#define DIR_PUBKEY_MAX 64    /* a public key as text (base64 of 32 bytes: 44) */
#define DIR_ATTRS_MAX 8
#define DIR_ATTR_KEY_MAX 31
#define DIR_ATTR_VAL_MAX 127
#define DIR_VALUE_MAX 4096   /* a record's JSON, as written and as accepted */
#define DIR_KEY_MAX (DIR_PREFIX_MAX + 6 + IPCF_NAME_MAX + 1 + DIR_HOST_MAX)

typedef struct dir_attr {
        char key[DIR_ATTR_KEY_MAX + 1];
        char val[DIR_ATTR_VAL_MAX + 1];
} dir_attr;

typedef struct dir_record {
        char name[IPCF_NAME_MAX + 1];
        char host[DIR_HOST_MAX + 1];
        char addr[DIR_ADDR_MAX + 1];
        char fp[DIR_FP_MAX + 1];
        char key[DIR_PUBKEY_MAX + 1];
        unsigned n_attrs;
        dir_attr attrs[DIR_ATTRS_MAX];
} dir_record;

bool dir_host_valid(const char *host, size_t len);
/* A key prefix: 1..DIR_PREFIX_MAX printable ASCII bytes without blanks. */
bool dir_prefix_valid(const char *prefix);
bool dir_addr_valid(const char *addr);
bool dir_fp_valid(const char *fp);
/* A public key's text: 0..DIR_PUBKEY_MAX printable bytes without blanks. */
bool dir_pubkey_valid(const char *key);
bool dir_attr_valid(const char *key, const char *val);

/* PREFIX "names/" into out; returns its length or -ENAMETOOLONG. */
int dir_key_names(const char *prefix, char *out, size_t size);
/* PREFIX "names/" NAME "/" (the range of one name). */
int dir_key_name(const char *prefix, const char *name, char *out, size_t size);
/* PREFIX "names/" NAME "/" HOST. */
int dir_key_make(const char *prefix, const char *name, const char *host, char *out, size_t size);
/* Split a key under PREFIX "names/" into name and host (NUL-terminated, into
 * rec). Returns 0 or -EINVAL (not ours, or either part invalid). */
int dir_key_parse(const char *prefix, const uint8_t *key, size_t len, dir_record *rec);

/* The JSON value of rec (addr, fp, key if not empty, attrs) into out. Returns its length,
 * -EINVAL if a field is invalid, -EMSGSIZE if it would pass size. */
int dir_value_make(const dir_record *rec, char *out, size_t size);
/* Parse a value into rec's addr, fp, key and attrs. Returns 0, -EINVAL (not a
 * valid record), -EMSGSIZE (longer than DIR_VALUE_MAX). */
int dir_value_parse(const uint8_t *val, size_t len, dir_record *rec);

/* "name@host" -> name and host when the part after the last '@' is a valid
 * host name and the part before it a valid name; otherwise the whole is the
 * name and host is "". Returns 0 or -EINVAL (no valid name either way). */
int dir_split_pinned(const char *s, char name[IPCF_NAME_MAX + 1], char host[DIR_HOST_MAX + 1]);
