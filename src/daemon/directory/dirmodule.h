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
 *              hosts that publish it are asked (hosts/remote.c).
 *
 * TRUST: the directory only says WHERE a name is. A host it names must be
 * enrolled here ([host NAME] with its pinned key), and the fingerprint of
 * that pinned key must be the record's; other records lead nowhere.
 * trust_keys = yes (keys taken from etcd) is refused at start.
 */
#pragma once

#include <stdint.h>

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
/* search.c: records seen whose host is not enrolled or whose fingerprint
 * is not the pinned key's. */
uint64_t dir_search_unusable(void);

struct daemon_module;
extern const struct daemon_module directory_module;
