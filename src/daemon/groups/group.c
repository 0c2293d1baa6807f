/*
 * group.c — shared-memory groups and named segments (see group.h and
 * docs/GROUPS.md).
 *
 * MEMORY: a group's memfd is sealed against SHRINKING (and further sealing)
 * before anyone else sees it, so no member can ever make another's mapping
 * fault by truncating it; it may grow. A resize to a larger size grows the
 * file; a resize to a smaller size only lowers the logical size and punches
 * the pages past it (memory returned; an old mapping reads zeros there, never
 * faults). The daemon maps only the control page.
 *
 * NOTICE: every member has its own wake-up channel (common/wake.h): the
 * daemon keeps the bell (shut for reading, a minimal send buffer) and passes
 * the ear. It writes the new size, then bumps the generation (release), then
 * rings every member (wake_ring: MSG_DONTWAIT | MSG_NOSIGNAL, a full queue
 * means a notice is pending anyway). Nothing a member does to its ear —
 * flags, not reading, shutting it — can make that ring block or kill the
 * daemon; members can send nothing towards the daemon.
 *
 * ROSTER AND LOCKS: each member gets a slot (0..255) of its group and a
 * serial; its member id is serial << 8 | slot (ctl.h). The daemon writes
 * roster[slot] = serial before the JOIN reply and 0 when the member exits
 * or dies, then kicks the group lock's sleepers: a lock the member held is
 * then seen as left (common/grplock.h). The daemon only ever WRITES the
 * control page (atomic stores, a FUTEX_WAKE): it reads nothing a member can
 * forge and never waits on the page.
 *
 * POLICY: creating a group or a named segment needs the policy's `register`
 * permission for the name (daemon/core/policy.h), as registering a name, a
 * mailbox or a multicast group does: nobody squats names the admin gave to
 * someone else. Joining is the group's allow list; opening a segment, its
 * mode.
 *
 * SEGMENTS: the memfd's own mode is 0600 (owner: the daemon's uid), so a
 * descriptor handed out read-only cannot be reopened read-write through
 * /proc/self/fd by anyone but the daemon's uid and root (who pass every
 * check anyway). Each SHM_OPEN gets a new open file description (the
 * daemon reopens its own memfd, which no client can lease: it is open for
 * writing here and owned by the daemon's uid), as shm_open would.
 *
 * INVARIANTS: a dgroup is on `groups` from creation until freed; a live one
 * (not dissolved) owns its name; a dissolved one is freed as soon as it has
 * no members. n_members == length of members == bits set in slot_used. Each
 * member holds one socket (its notice end).
 */
#include "daemon/groups/group.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/grpshm.h"
#include "common/grpwire.h"
#include "common/util.h"
#include "common/wake.h"
#include "daemon/core/client.h"
#include "daemon/core/dispatch.h"
#include "daemon/core/log.h"
#include "daemon/core/observe.h"
#include "daemon/core/policy.h"
#include "daemon/core/quota.h"

/* Bounds: every group, segment and member costs the daemon memory and fds. */
#define GROUPS_MAX 1024                      /* names in all */
#define GROUPS_PER_USER 64                   /* names per uid */
#define GROUP_BYTES_PER_USER (4ull << 30)    /* group data per uid */
#define GROUP_MEMBERS_MAX 256                /* members per group */
#define MEMBERS_MAX 2048                     /* members in all */

_Static_assert(GROUP_MEMBERS_MAX == GRPLOCK_SLOTS, "a slot per member");

enum { KIND_GROUP = 0, KIND_SEGMENT = 1 };

typedef struct member {
        struct dlist link;                   /* dgroup.members */
        struct dlist owner_link;             /* the owner's held list (admit.h: not idle) */
        struct dgroup *grp;
        client *owner;
        uint64_t id;
        cred cred;
        char prog[IPCF_NAME_MAX + 1];
        unsigned slot;                       /* in grp's roster */
        uint32_t serial;                     /* roster[slot] while a member */
        int notice;                          /* the bell of its notice channel */
} member;

typedef struct dgroup {
        struct dlist link;                   /* groups */
        uint64_t id;
        char name[IPCF_NAME_MAX + 1];
        int kind;
        int memfd;
        struct grpshm_ctl *ctl;              /* groups: the control page */
        uint64_t size, gen;
        uint64_t file_size;                  /* groups: largest total ever (never shrinks) */
        bool dissolved;
        uid_t owner_uid;
        gid_t owner_gid;
        pid_t creator_pid;
        uint32_t mode;                       /* segments */
        char (*allow_names)[IPCF_NAME_MAX + 1];
        uid_t allow_uids[GROUP_ALLOW_MAX];
        gid_t allow_gids[GROUP_ALLOW_MAX];
        unsigned n_names, n_uids, n_gids;
        struct dlist members;
        unsigned n_members;
        uint64_t slot_used[GROUP_MEMBERS_MAX / 64];
} dgroup;

static struct dlist groups = DLIST_INIT(groups);
static size_t n_groups, n_members_all;
static int members_kind = -1; /* client.held index of memberships */
static uint32_t last_serial;                 /* of the latest member admitted */

/* The page size: sizes are rounded up to whole pages (guard pages need it). */
static uint64_t page_size(void) {
        long p = sysconf(_SC_PAGESIZE);
        return p > 0 ? (uint64_t)p : 4096;
}

static uint64_t round_size(uint64_t size) {
        uint64_t p = page_size();
        return (size + p - 1) / p * p;
}

/* The live (not dissolved) group or segment of name, or NULL. A dissolved
 * group keeps its entry for the listing but no longer owns its name. */
static dgroup *group_by_name(const char *name) {
        dlist_for_each(pos, &groups) {
                dgroup *g = dlist_entry(pos, dgroup, link);
                if (!g->dissolved && strcmp(g->name, name) == 0)
                        return g;
        }
        return NULL;
}

/* Names and group bytes charged to uid (bounded walk: GROUPS_MAX). */
static void usage_of(uid_t uid, size_t *ret_names, uint64_t *ret_bytes) {
        size_t n = 0;
        uint64_t b = 0;
        dlist_for_each(pos, &groups) {
                dgroup *g = dlist_entry(pos, dgroup, link);
                if (g->owner_uid != uid)
                        continue;
                n++;
                if (g->kind == KIND_GROUP)
                        b += g->size;
        }
        *ret_names = n;
        *ret_bytes = b;
}

/* The owner's uid, root and the daemon's uid control a group. */
static bool may_control(const client *c, const dgroup *g) {
        return client_is_privileged(c) || c->cred.uid == g->owner_uid;
}

/* Admission: the controllers, then any allow-list entry (uid, gid, program
 * name). Entries are ORed; see docs/GROUPS.md on program names. */
static bool may_join(const client *c, const dgroup *g) {
        if (may_control(c, g))
                return true;
        for (unsigned i = 0; i < g->n_uids; i++)
                if (g->allow_uids[i] == c->cred.uid)
                        return true;
        for (unsigned i = 0; i < g->n_gids; i++)
                if (cred_in_group(&c->cred, g->allow_gids[i]))
                        return true;
        for (unsigned i = 0; i < g->n_names; i++)
                if (strcmp(g->allow_names[i], c->prog) == 0)
                        return true;
        return false;
}

/* Is any member of g run by uid? (who may look at a group) */
static bool has_member_uid(const dgroup *g, uid_t uid) {
        dlist_for_each(pos, &g->members) {
                if (dlist_entry(pos, member, link)->cred.uid == uid)
                        return true;
        }
        return false;
}

/* Forget g: unmap the control page and close the memfd (the kernel frees
 * the memory once no member maps it). Accepts a g not yet on the list. */
static void group_free(dgroup *g) {
        if (dlist_linked(&g->link)) {
                log_debug("group %s: freed", g->name);
                dlist_del(&g->link);
                n_groups--;
        }
        if (g->ctl)
                munmap(g->ctl, GRPSHM_CTL_SIZE);
        safe_close(g->memfd);
        free(g->allow_names);
        free(g);
}

/* End one membership (exit or death): its slot leaves the roster and the
 * lock's sleepers look again (a lock it held is free for the next taker,
 * who is told). The last member of a dissolved group takes the group with
 * it. */
static void member_free(member *mb) {
        dgroup *g = mb->grp;
        dlist_del(&mb->link);
        dlist_del(&mb->owner_link);
        g->n_members--;
        n_members_all--;
        g->slot_used[mb->slot / 64] &= ~(1ull << (mb->slot % 64));
        if (g->ctl) {
                atomic_store_explicit(&g->ctl->roster[mb->slot], 0, memory_order_release);
                grplock_kick(&g->ctl->lock);
        }
        safe_close(mb->notice);
        free(mb);
        if (g->dissolved && g->n_members == 0)
                group_free(g);
}

/* A member's notice: a wake-up channel (common/wake.h) whose bell stays
 * here, shut for reading (the member can send nothing towards us), with the
 * smallest send buffer (a member that never reads pins a few bytes' worth
 * of buffers, no more); the member gets the ear. 0 or -errno. */
static int notice_new(int *ret_bell, int *ret_ear) {
        int r = wake_new(ret_ear, ret_bell);
        if (r < 0)
                return r;
        int small = 1; /* the kernel raises it to its minimum */
        if (setsockopt(*ret_bell, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)) < 0 ||
            shutdown(*ret_bell, SHUT_RD) < 0) {
                r = -errno;
                close(*ret_bell);
                close(*ret_ear);
        }
        return r;
}

/* Publish a change: size first, then the generation (release), then ring. */
static void group_announce(dgroup *g) {
        g->gen++;
        if (g->ctl) {
                atomic_store_explicit(&g->ctl->size, g->size, memory_order_relaxed);
                if (g->dissolved)
                        atomic_store_explicit(&g->ctl->dissolved, 1, memory_order_relaxed);
                atomic_store_explicit(&g->ctl->gen, g->gen, memory_order_release);
        }
        dlist_for_each(pos, &g->members)
                (void)wake_ring(dlist_entry(pos, member, link)->notice);
}

/* A new entry with the common fields set (not yet on the list). */
static dgroup *group_alloc(client *c, const char *name, int kind) {
        dgroup *g = calloc(1, sizeof(*g));
        if (!g)
                return NULL;
        g->memfd = -1;
        g->kind = kind;
        g->id = ipcfd_new_id(c->d);
        str_copy(g->name, name, sizeof(g->name));
        g->owner_uid = c->cred.uid;
        g->owner_gid = c->cred.gid;
        g->creator_pid = c->cred.pid;
        dlist_init(&g->members);
        dlist_init(&g->link);
        return g;
}

/* May c's uid hold one more name (and bytes more of group data)? */
static int check_quota(const client *c, uint64_t bytes) {
        size_t names;
        uint64_t used;
        if (n_groups >= GROUPS_MAX)
                return -EDQUOT;
        usage_of(c->cred.uid, &names, &used);
        if (names >= GROUPS_PER_USER || used > GROUP_BYTES_PER_USER ||
            bytes > GROUP_BYTES_PER_USER - used)
                return -EDQUOT;
        return 0;
}

/* GROUP_CREATE: a sealed memfd with an initialised control page, owned by
 * the caller's uid; the caller is not a member until it joins. */
static int group_on_create(request *rq) {
        client *c = rq->c;
        grpwire_create w;
        int r = grpwire_parse_create(rq->m, &w);
        if (r == -EBADMSG)
                return METHOD_DROP;
        if (r < 0)
                return r;
        /* Whole pages: the guard page after the data must start where the
         * data ends. */
        uint64_t size = round_size(w.size);
        if ((r = policy_check(c->d, w.name, POLICY_REGISTER, &c->cred)) < 0)
                return r;
        if (group_by_name(w.name))
                return -EEXIST;
        if ((r = check_quota(c, size)) < 0)
                return r;

        dgroup *g = group_alloc(c, w.name, KIND_GROUP);
        if (!g)
                return -ENOMEM;
        if (w.n_names) {
                g->allow_names = calloc(w.n_names, sizeof(*g->allow_names));
                if (!g->allow_names) {
                        r = -ENOMEM;
                        goto fail;
                }
                for (unsigned i = 0; i < w.n_names; i++)
                        str_copy(g->allow_names[i], w.names[i], IPCF_NAME_MAX + 1);
        }
        g->n_names = w.n_names;
        g->n_uids = w.n_uids;
        g->n_gids = w.n_gids;
        memcpy(g->allow_uids, w.uids, sizeof(g->allow_uids));
        memcpy(g->allow_gids, w.gids, sizeof(g->allow_gids));
        g->size = size;
        g->file_size = GRPSHM_CTL_SIZE + size;
        /* Sealed before anyone else has it: nobody may shrink it (a shrink
         * would make other members' mappings fault), nor change the seals. */
        g->memfd = memfd_create("ipcf-group", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (g->memfd < 0 || ftruncate(g->memfd, (off_t)g->file_size) < 0 ||
            fcntl(g->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
                r = errno == ENFILE ? -EMFILE : -errno;
                goto fail;
        }
        g->ctl = mmap(NULL, GRPSHM_CTL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g->memfd, 0);
        if (g->ctl == MAP_FAILED) {
                g->ctl = NULL;
                r = -errno;
                goto fail;
        }
        grpshm_ctl_init(g->ctl, size);
        g->gen = 1;
        dlist_add_tail(&groups, &g->link);
        n_groups++;
        log_debug("group %s: created by pid %d, %llu bytes", g->name, (int)c->cred.pid,
                  (unsigned long long)size);
        ctl_put_u64(rq->reply, CTL_A_GROUP_ID, g->id);
        return 0;
fail:
        group_free(g);
        return r;
}

/* GROUP_JOIN: admit the caller by its credentials and hand it the memfd (the
 * daemon keeps it) and the ear of its own notice channel (the daemon keeps
 * the bell). */
static int group_on_join(request *rq) {
        client *c = rq->c;
        const char *name = ctl_arg_str(rq->args, CTL_A_NAME);
        int r;
        dgroup *g = group_by_name(name);
        if (!g || g->kind != KIND_GROUP)
                return -ENOENT;
        if (!may_join(c, g)) {
                log_debug("group %s: pid %d uid %u (%s) refused", g->name, (int)c->cred.pid,
                          (unsigned)c->cred.uid, c->prog);
                return -EACCES;
        }
        if (g->n_members >= GROUP_MEMBERS_MAX || n_members_all >= MEMBERS_MAX)
                return -EDQUOT;
        member *mb = calloc(1, sizeof(*mb));
        int sv[2]; /* bell (ours), ear (the member's) */
        r = !mb ? -ENOMEM : notice_new(&sv[0], &sv[1]);
        if (r < 0) {
                free(mb);
                return r;
        }
        /* The member's notice: we ring the bell on every change; the member
         * polls the ear (ipcf_fd of its handle). */
        mb->notice = sv[0];
        mb->grp = g;
        mb->owner = c;
        dlist_init(&mb->owner_link);
        mb->cred = c->cred;
        str_copy(mb->prog, c->prog, sizeof(mb->prog));
        /* A free slot (one exists: n_members < GROUP_MEMBERS_MAX) and a new
         * serial; the member id names both. */
        while (g->slot_used[mb->slot / 64] & (1ull << (mb->slot % 64)))
                mb->slot++;
        last_serial = last_serial % GRPLOCK_SERIAL_MAX + 1;
        mb->serial = last_serial;
        mb->id = grpshm_member_id(mb->slot, mb->serial);
        ctl_put_u64(rq->reply, CTL_A_GROUP_ID, g->id);
        ctl_put_u64(rq->reply, CTL_A_MEMBER_ID, mb->id);
        ctl_put_u64(rq->reply, CTL_A_SHM_SIZE, g->size);
        /* In the roster before the member can take a lock. */
        atomic_store_explicit(&g->ctl->roster[mb->slot], mb->serial, memory_order_release);
        /* Counted as a member only once the reply is on its way. */
        request_reply_fd(rq, g->memfd, false);
        request_reply_fd(rq, sv[1], true);
        r = request_reply_now(rq);
        if (r < 0) {
                atomic_store_explicit(&g->ctl->roster[mb->slot], 0, memory_order_release);
                close(mb->notice);
                free(mb);
                return 0; /* the client is being dropped */
        }
        g->slot_used[mb->slot / 64] |= 1ull << (mb->slot % 64);
        dlist_add_tail(&g->members, &mb->link);
        dlist_add_tail(&c->held[members_kind], &mb->owner_link);
        g->n_members++;
        n_members_all++;
        log_debug("group %s: pid %d joined (member %llu)", g->name, (int)c->cred.pid,
                  (unsigned long long)mb->id);
        return 0;
}

/* Find member id held by c (bounded walk). */
static member *member_find(client *c, uint64_t id) {
        dlist_for_each(gp, &groups) {
                dgroup *g = dlist_entry(gp, dgroup, link);
                dlist_for_each(pos, &g->members) {
                        member *mb = dlist_entry(pos, member, link);
                        if (mb->id == id && mb->owner == c)
                                return mb;
                }
        }
        return NULL;
}

/* GROUP_EXIT: only the client that joined may end its membership. */
static int group_on_exit(request *rq) {
        client *c = rq->c;
        member *mb = member_find(c, ctl_arg_u64(rq->args, CTL_A_MEMBER_ID, 0));
        if (!mb)
                return -ENOENT;
        log_debug("group %s: pid %d exited", mb->grp->name, (int)c->cred.pid);
        member_free(mb);
        return 0;
}

/* Peer death: every membership the client held ends at once. */
static void group_on_client_gone(ipcfd *d, const observe_ev *ev) {
        client *c = ev->client;
        dlist_for_each_safe(gp, gt, &groups) {
                dgroup *g = dlist_entry(gp, dgroup, link);
                /* member_free may free g when it was dissolved: the safe
                 * iteration already holds the next group. */
                dlist_for_each_safe(pos, tmp, &g->members) {
                        member *mb = dlist_entry(pos, member, link);
                        if (mb->owner != c)
                                continue;
                        bool last = g->dissolved && g->n_members == 1;
                        member_free(mb);
                        if (last)
                                break;
                }
        }
}

/* A live group or segment of this name that c controls: 0 or -errno. */
static int find_controlled(client *c, const char *name, dgroup **ret) {
        dgroup *g = group_by_name(name);
        if (!g)
                return -ENOENT;
        if (!may_control(c, g))
                return -EPERM;
        *ret = g;
        return 0;
}

/* GROUP_DISSOLVE: free the name, tell every member, and forget the group
 * now if nobody maps it, else when the last member goes. */
static int group_on_dissolve(request *rq) {
        dgroup *g = NULL;
        int r = find_controlled(rq->c, ctl_arg_str(rq->args, CTL_A_NAME), &g);
        if (r == 0 && g->kind != KIND_GROUP)
                r = -ENOENT;
        if (r < 0)
                return r;
        g->dissolved = true;
        group_announce(g);
        log_debug("group %s: dissolved (%u member%s still mapped)", g->name, g->n_members, plural(g->n_members));
        if (g->n_members == 0)
                group_free(g);
        return 0;
}

/* GROUP_RESIZE: grow the file or punch the cut part (it never shrinks:
 * sealed), publish the size and a new generation, ring every member. */
static int group_on_resize(request *rq) {
        uint64_t size = ctl_arg_u64(rq->args, CTL_A_SHM_SIZE, 0);
        dgroup *g = NULL;
        int r = find_controlled(rq->c, ctl_arg_str(rq->args, CTL_A_NAME), &g);
        if (r == 0 && g->kind != KIND_GROUP)
                r = -ENOENT;
        if (r == 0 && (size == 0 || size > GRPSHM_SIZE_MAX))
                r = -EINVAL;
        if (r < 0)
                return r;
        size = round_size(size);
        if (size > g->size) {
                /* Bytes only: the group's name is already counted. */
                size_t names;
                uint64_t used;
                usage_of(g->owner_uid, &names, &used);
                if (used > GROUP_BYTES_PER_USER || size - g->size > GROUP_BYTES_PER_USER - used)
                        return -EDQUOT;
        }
        uint64_t total = GRPSHM_CTL_SIZE + size, old_total = GRPSHM_CTL_SIZE + g->size;
        if (total > old_total && old_total < g->file_size) {
                /* Growing back over a part cut earlier: it must read as
                 * zeros, whatever a stale raw pointer wrote there since. */
                uint64_t end = MIN(total, g->file_size);
                if (fallocate(g->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)old_total,
                              (off_t)(end - old_total)) < 0)
                        log_debug("group %s: punch: %s", g->name, strerror(errno));
        }
        if (total > g->file_size) {
                if (ftruncate(g->memfd, (off_t)total) < 0)
                        return -errno;
                g->file_size = total;
        } else if (total < g->file_size) {
                /* The file keeps its length (sealed: nobody may shrink it);
                 * the pages past the new size go back to the kernel. */
                if (fallocate(g->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)total,
                              (off_t)(g->file_size - total)) < 0)
                        log_debug("group %s: punch: %s", g->name, strerror(errno));
        }
        log_debug("group %s: resized %llu -> %llu", g->name, (unsigned long long)g->size,
                  (unsigned long long)size);
        g->size = size;
        group_announce(g);
        return 0;
}

/* ---- named segments --------------------------------------------------- */

/* File-like permission check of a segment for c: want is 4 (read) or 6. */
static bool seg_allows(const client *c, const dgroup *g, unsigned want) {
        if (client_is_privileged(c))
                return true;
        unsigned bits = c->cred.uid == g->owner_uid ? (g->mode >> 6) & 7
                        : cred_in_group(&c->cred, g->owner_gid) ? (g->mode >> 3) & 7
                                                            : g->mode & 7;
        return (bits & want) == want;
}

/* SHM_OPEN: shm_open() semantics over a daemon-held memfd: each open gets
 * a descriptor of its own with the access granted. */
static int group_on_shm_open(request *rq) {
        client *c = rq->c;
        const char *name = ctl_arg_str(rq->args, CTL_A_NAME);
        uint32_t flags = ctl_arg_u32(rq->args, CTL_A_SHM_FLAGS, 0);
        uint32_t mode = ctl_arg_u32(rq->args, CTL_A_SHM_MODE, 0600);
        int r;
        if ((flags & ~(uint32_t)(CTL_SHM_CREAT | CTL_SHM_EXCL | CTL_SHM_RDWR)) || (mode & ~0777u))
                return -EINVAL;
        /* One namespace with groups: a group's name is taken for segments. */
        dgroup *g = group_by_name(name);
        if (g && g->kind != KIND_SEGMENT)
                return -EEXIST;
        if (g && (flags & CTL_SHM_CREAT) && (flags & CTL_SHM_EXCL))
                return -EEXIST;
        if (!g && !(flags & CTL_SHM_CREAT))
                return -ENOENT;
        bool created = false;
        if (!g) {
                if ((r = policy_check(c->d, name, POLICY_REGISTER, &c->cred)) < 0 ||
                    (r = check_quota(c, 0)) < 0)
                        return r;
                g = group_alloc(c, name, KIND_SEGMENT);
                if (!g)
                        return -ENOMEM;
                g->mode = mode;
                /* Unsealed: its users size it with ftruncate, as with a
                 * tmpfs file; what they touch is charged to them by the kernel. */
                g->memfd = memfd_create("ipcf-shm", MFD_CLOEXEC);
                /* Its own mode: no reopening a read-only descriptor
                 * read-write through /proc/self/fd (see SEGMENTS). */
                if (g->memfd < 0 || fchmod(g->memfd, 0600) < 0) {
                        r = errno == ENFILE ? -EMFILE : -errno;
                        group_free(g);
                        return r;
                }
                dlist_add_tail(&groups, &g->link);
                n_groups++;
                created = true;
        } else if (!seg_allows(c, g, (flags & CTL_SHM_RDWR) ? 6 : 4)) {
                return -EACCES;
        }
        /* Each open gets an open file description of its own, with the
         * access granted: flags and file offsets are not shared with other
         * openers, and a read-only one cannot write (see SEGMENTS). The
         * memfd was made without MFD_ALLOW_SEALING, so nobody adds
         * F_SEAL_WRITE under the writers. */
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", g->memfd);
        int fd = open(path, ((flags & CTL_SHM_RDWR) ? O_RDWR : O_RDONLY) | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                if (created)
                        group_free(g);
                return r;
        }
        ctl_put_u64(rq->reply, CTL_A_GROUP_ID, g->id);
        request_reply_fd(rq, fd, true); /* closed once sent */
        return 0;
}

/* SHM_UNLINK: the owner removes the name; open descriptors live on. */
static int group_on_shm_unlink(request *rq) {
        dgroup *g = group_by_name(ctl_arg_str(rq->args, CTL_A_NAME));
        int r = !g || g->kind != KIND_SEGMENT ? -ENOENT : may_control(rq->c, g) ? 0 : -EPERM;
        if (r < 0)
                return r;
        group_free(g);
        return 0;
}

/* ---- listing ---------------------------------------------------------- */

static bool may_see(const client *c, const dgroup *g) {
        return may_control(c, g) || (g->kind == KIND_GROUP && has_member_uid(g, c->cred.uid));
}

/* The wire entry of g (a segment's size is what its file has now). */
static void entry_of(const dgroup *g, struct ctl_group_entry_wire *e) {
        memset(e, 0, sizeof(*e));
        str_copy(e->name, g->name, sizeof(e->name));
        uint64_t size = g->size;
        if (g->kind == KIND_SEGMENT) {
                struct stat st;
                size = fstat(g->memfd, &st) == 0 ? (uint64_t)st.st_size : 0;
        }
        e->id = htole64(g->id);
        e->size = htole64(size);
        e->generation = htole64(g->gen);
        e->kind = htole32((uint32_t)g->kind);
        e->state = htole32(g->dissolved ? 1 : 0);
        e->members = htole32(g->n_members);
        e->owner_uid = htole32(g->owner_uid);
        e->creator_pid = htole32((uint32_t)g->creator_pid);
        e->mode = htole32(g->mode);
}

/* Would an attribute of len bytes fit, leaving room for LIST_MORE? */
static bool fits(const ctl_builder *b, size_t len) {
        return b->err == 0 && ((4 + len + 3) & ~(size_t)3) + 8 <= CTL_MSG_MAX - b->len;
}

/* GROUP_LIST: every visible group (LIST_SKIP paging), or with NAME one live
 * group and its members. */
static int group_on_list(request *rq) {
        client *c = rq->c;
        const char *name = ctl_arg_str(rq->args, CTL_A_NAME);
        uint32_t skip = ctl_arg_u32(rq->args, CTL_A_LIST_SKIP, 0), more = 0;
        ctl_builder *b = rq->reply;
        dgroup *one = NULL;
        if (name) {
                one = ctl_name_valid(name) ? group_by_name(name) : NULL;
                if (!one)
                        return -ENOENT;
                if (!may_see(c, one))
                        return -EACCES;
        }
        struct ctl_group_entry_wire e;
        if (one) {
                /* One group and its members (a member list that does not fit
                 * is cut and LIST_MORE says so; 256 members always fit). */
                entry_of(one, &e);
                ctl_put(b, CTL_A_GROUP_ENTRY, &e, sizeof(e));
                dlist_for_each(pos, &one->members) {
                        member *mb = dlist_entry(pos, member, link);
                        struct ctl_member_entry_wire w;
                        memset(&w, 0, sizeof(w));
                        str_copy(w.name, mb->prog, sizeof(w.name));
                        w.member_id = htole64(mb->id);
                        w.pid = htole32((uint32_t)mb->cred.pid);
                        w.uid = htole32(mb->cred.uid);
                        w.gid = htole32(mb->cred.gid);
                        if (!fits(b, sizeof(w))) {
                                more = 1;
                                break;
                        }
                        ctl_put(b, CTL_A_MEMBER_ENTRY, &w, sizeof(w));
                }
        } else {
                /* Every visible entry, after the first `skip` (paging). */
                dlist_for_each(pos, &groups) {
                        dgroup *g = dlist_entry(pos, dgroup, link);
                        if (!may_see(c, g))
                                continue;
                        if (skip) {
                                skip--;
                                continue;
                        }
                        if (!fits(b, sizeof(e))) {
                                more = 1;
                                break;
                        }
                        entry_of(g, &e);
                        ctl_put(b, CTL_A_GROUP_ENTRY, &e, sizeof(e));
                }
        }
        ctl_put_u32(b, CTL_A_LIST_MORE, more);
        return 0;
}

static int groups_init(ipcfd *d) {
        static const method methods[] = {
                { CTL_GROUP_CREATE, group_on_create },
                { CTL_GROUP_JOIN, group_on_join },
                { CTL_GROUP_EXIT, group_on_exit },
                { CTL_GROUP_DISSOLVE, group_on_dissolve },
                { CTL_GROUP_RESIZE, group_on_resize },
                { CTL_GROUP_LIST, group_on_list },
                { CTL_SHM_OPEN, group_on_shm_open },
                { CTL_SHM_UNLINK, group_on_shm_unlink },
        };
        int r = members_kind = client_hold_kind(d, "group memberships");
        if (r >= 0)
                r = dispatch_add(d, methods, ARRAY_SIZE(methods));
        if (r == 0)
                r = observe(d, OBSERVE_CLIENT_GONE, group_on_client_gone);
        return r;
}

static void groups_dump(ipcfd *d, char *buf, size_t size) {
        snprintf(buf, size, "%zu %s, %zu member%s", n_groups, n_groups == 1 ? "group or segment" : "groups and segments",
                 n_members_all, plural(n_members_all));
}

const daemon_module groups_module = {
        .name = "groups",
        .init = groups_init,
        .dump = groups_dump,
};
