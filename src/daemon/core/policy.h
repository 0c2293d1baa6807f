/*
 * policy.h — who may register and allocate which names.
 *
 * The first [name PATTERN] rule of the config whose pattern matches a name
 * decides; a missing (or empty) list, or no matching rule, allows only the
 * daemon's own uid and root. Those two are always allowed: they control the
 * daemon anyway. Principals user:/group: are resolved to ids once, at start
 * (policy_resolve()), so a check never calls into NSS and never blocks.
 * SIGHUP reloads the config (main.c): rules and limits change for every
 * later check; nothing already granted is taken back.
 * Groups match the primary gid or any supplementary group (SO_PEERGROUPS).
 */
#pragma once

#include "daemon/core/ipcfd.h"

enum policy_action {
        POLICY_REGISTER,
        POLICY_ALLOCATE,
        /* register a name that another uid holds registrations of: joining
         * them (the name's flows are then spread over both users' programs)
         * needs the rule's `share` list on top of `register`. */
        POLICY_SHARE,
};

/* Resolve the user/group names of c in place (unknown ones never match,
 * with a warning). May block on NSS: call it only at start or on reload. */
void policy_resolve(conf *c);

/* The remote principals of c (remote_allocate "P@HOST") whose HOST is no
 * [host HOST] of c nor this host: they could match nobody. With hosts
 * enrolled from the directory ([directory] backend = etcd, trust_keys =
 * yes) a host of that name may come later: each is a warning (logged).
 * Otherwise the first is an error: -EINVAL, "line N: what" (the key's line)
 * in err. At start, on reload and for --check-config (config_load). */
int policy_check_remote_hosts(const conf *c, char *err, size_t size);

/* 0 if cr may do act on name, else -EACCES. */
int policy_check(const ipcfd *d, const char *name, enum policy_action act, const cred *cr);

/* 0, or -EINVAL if name ends in "@HOST" for this host or a host enrolled
 * with it (d->host_pins: the hosts of the start, and those the directory
 * enrolled since; a reload changes neither): every allocation of such a
 * name goes to that host, or here without the "@HOST", so a registration,
 * mailbox or group of that name made here could never be reached. */
int policy_name_local(const ipcfd *d, const char *name);

/* Does the (resolved) principal list a name cr? */
bool policy_acl_allows(const conf_acl *a, const cred *cr);
