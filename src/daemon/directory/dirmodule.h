/*
 * dirmodule.h — the directory as a service of the daemon (docs/DAEMON.md
 * "The directory on etcd"): with [directory] backend = etcd the daemon runs
 * one `directory` (directory.h) in its loop.
 *
 * PARTS:
 *   module.c   the module: the directory made from the config and the hosts
 *              module's identity of this host, the publisher (a name
 *              registered here that other hosts may reach is published,
 *              and unpublished as soon as it is not), the directory's
 *              changes told to the daemon's observers (watches);
 *   search.c   the resolver "directory" (RESOLVE_RANK_DIRECTORY, just before
 *              "hosts"): where the directory says a name is, the enrolled
 *              hosts that publish it are asked (hosts/remote.c);
 *   trust.c    which records lead somewhere, and hosts enrolled from the
 *              directory (trust_keys = yes);
 *   list.c     DIR_LIST (`ipcf ls --all-hosts`): the cache's records, as
 *              the caller's policy lets it see them.
 *
 * TRUST: by default the directory only says WHERE a name is. A host it
 * names must be enrolled here ([host NAME] with its pinned key), and the
 * fingerprint of that pinned key must be the record's; other records lead
 * nowhere. With trust_keys = yes a host the config does not name is
 * enrolled, on first use, with the key its record carries (if that key's
 * fingerprint is the record's); pinned keys still win (trust.c).
 */
#pragma once

#include <stdint.h>

#include "common/ctl.h"
#include "daemon/core/ipcfd.h"
#include "daemon/directory/directory.h"

/* "sha256:" and the hex of the SHA-256 of a host's public key. */
#define DIR_KEY_FP_LEN (7 + 64)

/* module.c: the daemon's directory; NULL unless backend = etcd. */
extern directory *the_directory;
/* module.c: the fingerprint of a host's public key, as published. */
void dir_key_fp(const uint8_t pub[32], char out[DIR_KEY_FP_LEN + 1]);

/* search.c: the resolver (module init), and its held lookups let go
 * before the directory is freed (module shutdown). */
int dir_search_init(ipcfd *d);
void dir_search_shutdown(void);

/* trust.c: the status of a record (CTL_DIR_ST_*, see trust.c). */
void dir_trust_init(ipcfd *d);
int dir_record_status(const dir_record *rec);
/* May an allocation use rec? Enrols a TRUSTABLE host first; counts the
 * records refused. */
bool dir_record_use(const dir_record *rec);
/* Would an allocation use rec (no enrolment, nothing counted)? For watches. */
bool dir_record_reachable(const dir_record *rec);
typedef struct dir_trust_stats {
        bool trust_keys;
        uint64_t unusable;      /* records an allocation met and could not use */
        uint64_t keys_refused;  /* ... of which for a key not the enrolled one's */
        uint64_t enrolled;      /* hosts enrolled from the directory */
} dir_trust_stats;
void dir_trust_get(dir_trust_stats *ret);

/* module.c: the directory's health into a reply (HOSTS, DIR_LIST); nothing
 * without a directory. */
void dir_health_reply(ctl_builder *reply);

/* list.c: the DIR_LIST method (registered with or without a directory). */
int dir_list_init(ipcfd *d);

struct daemon_module;
extern const struct daemon_module directory_module;
