/*
 * resolve.h — resolvers: the ways the daemon finds who serves a name.
 *
 * Allocating a name asks an ordered list of resolvers, one after the other,
 * until one takes the allocation. These are the "search rules" of the texts
 * (Day, Saltzer): the local registrations first, then the daemon's own
 * objects (mailboxes, multicast groups), then starting a program on demand;
 * next, the enrolled hosts and a directory. Each is a module's own business;
 * alloc.c only walks the list.
 *
 * WHAT A RESOLVER IMPLEMENTS (a `resolver`, registered by its module's init
 * with resolver_add(); see the worked example in docs/ARCHITECTURE.md):
 *   name     its name ("registry"), by which the order may be configured;
 *   rank     its place in the order: lower is asked first. The built-in
 *            ranks are spaced so a new resolver goes between two without
 *            touching them (RESOLVE_RANK_* below);
 *   roles    the roles (enum ctl_role) it answers, RESOLVE_ROLE(r) bits: a
 *            resolver is never asked for an allocation of another role;
 *   resolve(d, a)   the allocation a (name, qos, role, requester: alloc.h).
 *            Returns RESOLVE_NEXT: not mine, ask the next one; 0: taken —
 *            the resolver has accepted a (alloc_accept), failed it
 *            (alloc_fail), or holds it to decide later (alloc_hold); a must
 *            not be touched by the caller afterwards; -errno: a fails with
 *            it (ENOENT is what a walk where nobody took it fails with) and
 *            no later resolver is asked;
 *   release(a, withdrawn)   optional: a held by this resolver leaves it —
 *            withdrawn (timed out, its requester gone: forget it) or not
 *            (it was decided, or is being resolved again). Called before a is
 *            unlinked from the holder's list;
 *   has(d, name, *pid, *uid)  optional: is name reachable through it now?
 *            (watches of names, NAME_UP/NAME_DOWN); *pid, *uid: who serves
 *            it (the uid decides whether a watcher may see the pid);
 *   list(d, page, all, uid)  optional: its names for LIST (NAME_ENTRY), those
 *            of uid only unless all.
 *
 * ORDER: by rank, then registration order. The ranks are data: a config
 * section naming resolvers in order can set them before the modules' init
 * (resolver_add() sorts), without code here or in alloc.c.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/core/ipcfd.h"

struct alloc;
struct list_page;

#define RESOLVE_NEXT 1
#define RESOLVE_ROLE(r) (1u << (r))
#define RESOLVERS_MAX 16

/* The built-in order. */
enum {
        RESOLVE_RANK_PINNED = 50,      /* hosts/remote.c: name@host, one host asked */
        RESOLVE_RANK_REGISTRY = 100,   /* names/registry.c: registrations */
        RESOLVE_RANK_MODELS = 200,     /* models/models.c: mailboxes, multicast groups */
        RESOLVE_RANK_ACTIVATION = 900, /* names/activation.c: start the program, ask again */
        RESOLVE_RANK_DIRECTORY = 940,  /* directory/search.c: where the directory says the name is */
        RESOLVE_RANK_HOSTS = 950,      /* hosts/remote.c: the enrolled hosts, in the search rules */
};

typedef struct resolver {
        const char *name;
        int rank;
        uint32_t roles;
        int (*resolve)(ipcfd *d, struct alloc *a);
        void (*release)(struct alloc *a, bool withdrawn);
        bool (*has)(ipcfd *d, const char *name, pid_t *ret_pid, uid_t *ret_uid);
        void (*list)(ipcfd *d, struct list_page *page, bool all, uid_t uid);
} resolver;

/* Add r (it must outlive the daemon: a static). Returns 0, -ENOSPC
 * (RESOLVERS_MAX), or -EINVAL (no resolve function). */
int resolver_add(const resolver *r);

/* Walk the list for a (of role), from the first resolver up to (not
 * including) upto (NULL: all). See alloc_resolve() for the returns. */
int resolve_walk(ipcfd *d, struct alloc *a, uint32_t role, const resolver *upto);

/* Walk the resolvers ranked after `after` for a (a resolver that held a and
 * let it go on). Returns as resolve_walk(). */
int resolve_walk_after(ipcfd *d, struct alloc *a, uint32_t role, const resolver *after);

/* Is name reachable now (the first resolver that has it)? *ret_pid and
 * *ret_uid (either may be NULL): who serves it. */
bool resolve_name_up(ipcfd *d, const char *name, pid_t *ret_pid, uid_t *ret_uid);

/* Every resolver's names for LIST, in order. */
void resolve_list(ipcfd *d, struct list_page *page, bool all, uid_t uid);

/* Forget every resolver (daemon shutdown: the next start registers again). */
void resolve_reset(void);
