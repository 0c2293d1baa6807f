/*
 * admit.c — connection admission: reserves and reclaiming idle connections
 * (the rules are in admit.h).
 *
 * The clients list (ipcfd.clients) is kept in order of last activity
 * (client.c moves a client to its tail on each request), so the idle ones
 * are at its head: a reclaim looks at them only, and only when the cap is
 * reached.
 *
 * THE END OF A CONNECTION the daemon refuses or reclaims (admit_notice):
 * a Unix socket closed with messages it never read resets its peer, and a
 * SOCK_SEQPACKET receive reports the reset before the messages still queued
 * for it, so the client's next receive fails ECONNRESET ahead of the notice
 * (the library looks behind a reset; a plain reader does not). Reading the
 * connection's queue away before the close, as was done, is not enough: a
 * client that speaks (its first HELLO) after that read and before the close
 * is reset all the same (test-connections
 * a_refused_client_that_speaks_meanwhile_reads_the_notice_never_a_reset was,
 * in nearly every round that speaks as the notice comes). So the notice is
 * sent, then shutdown(SHUT_RDWR): the notice is followed by an orderly end,
 * and the kernel fails the client's sends from then on (EPIPE; its send and
 * our shutdown take the same lock, so each message is either queued before
 * it or refused): the queue can only shrink. It is then read away, and the
 * close finds it empty: no reset, whatever the client does. The read is
 * bounded (NOTICE_DRAIN_MAX messages, each dropped uncopied with any
 * descriptor it carried, never waiting): a client with the default send
 * buffer (net.core.wmem_default, 208 KiB) cannot queue that many (under
 * 300), so only one that raised its buffer and queued over a thousand
 * requests on a connection not yet admitted can still be reset (an empty
 * message, which no request is, also ends the read).
 * Keeping the connection half-closed (SHUT_WR only) until the client hangs
 * up would not do: its sends would still be queued, so the close we must
 * make at some bound could still reset it; and it would keep a descriptor,
 * the very thing that is short when the facility is full, that long.
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

/* The most messages admit_notice reads away from a connection it ends. */
#define NOTICE_DRAIN_MAX 1024

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
        ctl_builder *b = malloc(sizeof(*b));
        if (b) {
                ctl_begin(b, CTL_ERROR, 0);
                ctl_put_u32(b, CTL_A_ERRNO, (uint32_t)err);
                ctl_put_str(b, CTL_A_REASON, why);
                if (ctl_end(b) >= 0)
                        (void)ctl_send(fd, b, NULL, 0); /* non-blocking: a full socket gets none */
                free(b);
        }
        /* See THE END OF A CONNECTION: from here the client's sends fail
         * EPIPE, so what we read away now is all it will ever have sent. */
        (void)shutdown(fd, SHUT_RDWR);
        for (int i = 0; i < NOTICE_DRAIN_MAX; i++) {
                /* MSG_TRUNC with no buffer: each message is dropped whole,
                 * uncopied; the kernel closes descriptors it carried (no room
                 * was given for them). 0 is the end (or an empty message). */
                ssize_t n = recv(fd, NULL, 0, MSG_DONTWAIT | MSG_TRUNC);
                if (n == 0 || (n < 0 && errno != EINTR))
                        break;
        }
}
