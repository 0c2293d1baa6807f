/*
 * admit.c — connection admission: reserves and reclaiming idle connections
 * (the rules are in admit.h).
 *
 * The clients list (ipcfd.clients) is kept in order of last activity
 * (client.c moves a client to its tail on each request), so the idle ones
 * are at its head: a reclaim looks at them only, and only when the cap is
 * reached.
 */
#include "daemon/core/admit.h"

#include <errno.h>
#include <stdlib.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/core/client.h"
#include "daemon/core/log.h"
#include "daemon/core/quota.h"

static size_t root_reserve(const ipcfd *d) {
        return MIN(MAX(d->max_clients / 64, (size_t)1), d->max_clients / 4);
}

static size_t users_pool(const ipcfd *d) { return d->max_clients / 4; }

/* Connections beyond each user's reserved ones, in all. */
static size_t excess(const ipcfd *d) {
        size_t n = 0;
        dlist_for_each(pos, &d->users) {
                const user *u = dlist_entry(pos, user, link);
                if (u->used[QUOTA_CLIENTS] > CLIENTS_RESERVED)
                        n += u->used[QUOTA_CLIENTS] - CLIENTS_RESERVED;
        }
        return n;
}

/* Is there room for one more connection of a user holding `have`? */
static bool room(const ipcfd *d, bool privileged, uint64_t have) {
        if (privileged)
                return d->n_clients < d->max_clients;
        if (d->n_clients >= d->max_clients - root_reserve(d))
                return false;
        if (have < CLIENTS_RESERVED)
                return true;
        return excess(d) < d->max_clients - root_reserve(d) - users_pool(d);
}

/* See IDLE in admit.h. */
static bool client_idle(const client *c, uint64_t now) {
        if (c->dying || c->dead || c->paused || now - c->last_ns < CLIENT_IDLE_NS)
                return false;
        for (unsigned k = 0; k < c->d->n_holds; k++)
                if (!dlist_empty(&c->held[k]))
                        return false;
        int unread = 0, unsent = 0;
        return ioctl(c->fd, SIOCOUTQ, &unread) == 0 && unread == 0 &&
               ioctl(c->fd, SIOCINQ, &unsent) == 0 && unsent == 0;
}

/* Reclaim one idle connection of a user holding more than `need`
 * connections (the biggest such user's oldest). True if one was. */
static bool reclaim_one(ipcfd *d, uint64_t need) {
        uint64_t now = now_ns();
        client *victim = NULL;
        dlist_for_each(pos, &d->clients) {
                client *c = dlist_entry(pos, client, link);
                if (now - c->last_ns < CLIENT_IDLE_NS)
                        break; /* the rest are younger still */
                if (c->user->used[QUOTA_CLIENTS] <= need || !client_idle(c, now))
                        continue;
                if (!victim || c->user->used[QUOTA_CLIENTS] > victim->user->used[QUOTA_CLIENTS])
                        victim = c;
        }
        if (!victim)
                return false;
        log_debug("client %llu (pid %d uid %u): idle, reclaimed", (unsigned long long)victim->id,
                  (int)victim->cred.pid, (unsigned)victim->cred.uid);
        admit_notice(victim->fd, ECONNABORTED, "idle connection reclaimed: the facility is full");
        client_free(victim);
        return true;
}

int admit_connection(ipcfd *d, uid_t uid, user *u, const char **ret_why) {
        bool privileged = uid == 0 || uid == d->uid;
        uint64_t have = u->used[QUOTA_CLIENTS];
        if (quota_check(u, QUOTA_CLIENTS, 1) < 0) {
                *ret_why = "too many connections for this user (clients_per_user)";
                return -EDQUOT;
        }
        /* One reclaim makes the room a connection needs (it frees one of a
         * user above the newcomer's count, so above the reserve when the
         * excess is what is full); the bound only guards the loop. */
        for (int i = 0; i < 4; i++) {
                if (room(d, privileged, have))
                        return 0;
                if (!reclaim_one(d, have + 1))
                        break;
        }
        *ret_why = "the facility has too many connections, none idle";
        return -EUSERS;
}

void admit_notice(int fd, int err, const char *why) {
        /* What the client sent and we will never read goes first: a socket
         * closed with unread data resets its peer, whose next receive would
         * then fail ECONNRESET before it could read the notice. (A few
         * messages at most: a fresh connection, or an idle one.) */
        static uint8_t buf[CTL_MSG_MAX];
        for (int i = 0; i < 64; i++) {
                int fds[CTL_FDS_MAX];
                unsigned n_fds = 0;
                ssize_t n = ctl_recv(fd, buf, sizeof(buf), fds, &n_fds, MSG_DONTWAIT);
                for (unsigned k = 0; k < n_fds; k++)
                        close(fds[k]);
                if (n <= 0)
                        break;
        }
        ctl_builder *b = malloc(sizeof(*b));
        if (!b)
                return;
        ctl_begin(b, CTL_ERROR, 0);
        ctl_put_u32(b, CTL_A_ERRNO, (uint32_t)err);
        ctl_put_str(b, CTL_A_REASON, why);
        if (ctl_end(b) >= 0)
                (void)ctl_send(fd, b, NULL, 0); /* non-blocking: a full socket just closes */
        free(b);
}
