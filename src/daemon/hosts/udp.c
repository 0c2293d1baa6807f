/*
 * udp.c — the daemon's UDP socket (udp.h): batches both ways, and the
 * segmentation offloads (GSO on send, GRO on receive) where the kernel has
 * them.
 */
#include "daemon/hosts/udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/core/dgtap.h"

/* Big buffers, forced past the sysctl maxima when we may (root), else as big
 * as the kernel allows. */
static void udp_buffers(udp_sock *u) {
        int sz = UDP_BUF_BYTES;
        if (setsockopt(u->fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
                setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
        if (setsockopt(u->fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
                setsockopt(u->fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
        socklen_t l = sizeof(u->rcvbuf);
        getsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &u->rcvbuf, &l);
        l = sizeof(u->sndbuf);
        getsockopt(u->fd, SOL_SOCKET, SO_SNDBUF, &u->sndbuf, &l);
}

static socklen_t sockaddr_of(int family, const conf_addr *c, struct sockaddr_storage *ss) {
        memset(ss, 0, sizeof(*ss));
        if (family == AF_INET) {
                struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
                s4->sin_family = AF_INET;
                s4->sin_port = htons(c->port);
                memcpy(&s4->sin_addr, c->ip, 4);
                return sizeof(*s4);
        }
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(c->port);
        if (c->family == 4) {
                /* v4-mapped ::ffff:a.b.c.d */
                s6->sin6_addr.s6_addr[10] = s6->sin6_addr.s6_addr[11] = 0xff;
                memcpy(&s6->sin6_addr.s6_addr[12], c->ip, 4);
        } else {
                memcpy(&s6->sin6_addr, c->ip, 16);
        }
        return sizeof(*s6);
}

const char *udp_unreachable(const conf_addr *listen, const conf_addr *peer) {
        if (peer->family == 0)
                return NULL; /* no address: it calls us */
        if (listen->family != 6)
                return peer->family == 4 ? NULL
                                         : "an IPv6 address, but [hosts] listen is IPv4 (listen = [::]:PORT reaches both)";
        static const uint8_t any[16], mapped[12] = { [10] = 0xff, [11] = 0xff };
        if (memcmp(listen->ip, any, 16) == 0)
                return NULL;
        bool listen4 = memcmp(listen->ip, mapped, 12) == 0;
        if (listen4 == (peer->family == 4))
                return NULL;
        return listen4 ? "an IPv6 address, but [hosts] listen is an IPv4 one (listen = [::]:PORT reaches both)"
                       : "an IPv4 address, but [hosts] listen is an IPv6 one (listen = [::]:PORT reaches both)";
}

void udp_addr_from_conf(const udp_sock *u, const conf_addr *c, efcp_addr *ret) {
        struct sockaddr_storage ss;
        socklen_t l = sockaddr_of(u->family, c, &ss);
        memset(ret, 0, sizeof(*ret));
        memcpy(ret->bytes, &ss, l);
        ret->len = l;
}

/* GSO: the kernel knows UDP_SEGMENT (whether a device takes it shows at the
 * first send). GRO: the socket accepts UDP_GRO. */
static void udp_offload_probe(udp_sock *u) {
        int v = 0;
        socklen_t l = sizeof(v);
        u->can_gso = u->gso = getsockopt(u->fd, SOL_UDP, UDP_SEGMENT, &v, &l) == 0;
        int one = 1;
        u->can_gro = u->gro = setsockopt(u->fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0;
}

void udp_offload_set(udp_sock *u, bool gso, bool gro) {
        u->gso = gso && u->can_gso;
        int on = gro && u->can_gro;
        if (u->can_gro && setsockopt(u->fd, SOL_UDP, UDP_GRO, &on, sizeof(on)) == 0)
                u->gro = on;
}

int udp_open(udp_sock *u, const conf_addr *addr) {
        memset(u, 0, sizeof(*u));
        u->bound = *addr;
        u->family = addr->family == 6 ? AF_INET6 : AF_INET;
        u->fd = socket(u->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (u->fd < 0)
                return -errno;
        if (u->family == AF_INET6) {
                int off = 0; /* [::] takes IPv4 too (v4-mapped) */
                setsockopt(u->fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
                int pmtu = IPV6_PMTUDISC_DO;
                setsockopt(u->fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &pmtu, sizeof(pmtu));
        }
        int pmtu = IP_PMTUDISC_DO;
        setsockopt(u->fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu));
        udp_buffers(u);
        struct sockaddr_storage ss;
        socklen_t l = sockaddr_of(u->family, addr, &ss);
        if (bind(u->fd, (struct sockaddr *)&ss, l) < 0) {
                int r = -errno;
                u->fd = safe_close(u->fd);
                return r;
        }
        udp_offload_probe(u);
        for (unsigned i = 0; i < UDP_BATCH; i++)
                u->tiov[i] = (struct iovec){ u->tbuf[i], 0 };
        return 0;
}

void udp_close(udp_sock *u) { u->fd = safe_close(u->fd); }

int udp_local(const udp_sock *u, efcp_addr *ret) {
        struct sockaddr_storage ss;
        socklen_t l = sizeof(ss);
        if (getsockname(u->fd, (struct sockaddr *)&ss, &l) < 0)
                return -errno;
        memset(ret, 0, sizeof(*ret));
        memcpy(ret->bytes, &ss, MIN((size_t)l, sizeof(ret->bytes)));
        ret->len = l;
        return 0;
}

void udp_addr_text(const efcp_addr *addr, char *out, size_t size) {
        char ip[INET6_ADDRSTRLEN];
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        memcpy(&ss, addr->bytes, MIN((size_t)addr->len, sizeof(ss)));
        out[0] = 0;
        if (addr->len >= sizeof(struct sockaddr_in) && ss.ss_family == AF_INET) {
                const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
                inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
                snprintf(out, size, "%s:%u", ip, ntohs(s4->sin_port));
        } else if (addr->len >= sizeof(struct sockaddr_in6) && ss.ss_family == AF_INET6) {
                const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
                if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
                        inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], ip, sizeof(ip));
                else
                        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
                snprintf(out, size, IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) ? "%s:%u" : "[%s]:%u", ip,
                         ntohs(s6->sin6_port));
        }
}

uint8_t *udp_tx_slot(udp_sock *u) { return u->n_tx < UDP_BATCH ? u->tbuf[u->n_tx] : NULL; }

void udp_tx_commit(udp_sock *u, size_t len, const efcp_addr *dst) {
        unsigned i = u->n_tx++;
        u->tdst[i] = *dst;
        u->tiov[i].iov_len = len;
        dgtap(false, u->tbuf[i], len, dst->bytes, dst->len);
}

static bool addr_eq(const efcp_addr *a, const efcp_addr *b) {
        return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

/* How many queued datagrams from i on may leave as one GSO message: one
 * destination, one size, the last of the run possibly shorter. */
static unsigned gso_run(const udp_sock *u, unsigned i) {
        size_t seg = u->tiov[i].iov_len, total = seg;
        unsigned j = i + 1;
        while (j < u->n_tx && j - i < UDP_GSO_SEGS && u->tiov[j - 1].iov_len == seg &&
               u->tiov[j].iov_len <= seg && total + u->tiov[j].iov_len <= UDP_GSO_BYTES &&
               addr_eq(&u->tdst[j], &u->tdst[i])) {
                total += u->tiov[j].iov_len;
                j++;
        }
        return j - i;
}

/* The messages for the datagrams [sent, n_tx). Returns how many. */
static unsigned build_msgs(udp_sock *u) {
        unsigned k = 0;
        for (unsigned i = u->sent; i < u->n_tx; k++) {
                unsigned n = u->gso ? gso_run(u, i) : 1;
                u->tm[k] = (struct mmsghdr){ .msg_hdr = { .msg_name = u->tdst[i].bytes,
                                                          .msg_namelen = u->tdst[i].len,
                                                          .msg_iov = &u->tiov[i],
                                                          .msg_iovlen = n } };
                if (n > 1) {
                        struct msghdr *h = &u->tm[k].msg_hdr;
                        h->msg_control = u->tctl[k].buf;
                        h->msg_controllen = sizeof(u->tctl[k].buf);
                        struct cmsghdr *c = CMSG_FIRSTHDR(h);
                        c->cmsg_level = SOL_UDP;
                        c->cmsg_type = UDP_SEGMENT;
                        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
                        uint16_t seg = (uint16_t)u->tiov[i].iov_len;
                        memcpy(CMSG_DATA(c), &seg, sizeof(seg));
                }
                u->tmsg[k] = (uint8_t)n;
                i += n;
        }
        return k;
}

/* Message k (and its datagrams) went, or was dropped. */
static void msg_done(udp_sock *u, unsigned k, bool sent) {
        unsigned n = u->tmsg[k];
        if (sent) {
                for (unsigned i = 0; i < n; i++)
                        u->st.bytes_out += u->tiov[u->sent + i].iov_len;
                u->st.dgrams_out += n;
                u->st.gso_msgs += n > 1;
        } else {
                u->st.send_errors += n;
        }
        u->sent += n;
}

int udp_flush(udp_sock *u) {
        while (u->sent < u->n_tx) {
                unsigned nm = build_msgs(u);
                int n = sendmmsg(u->fd, u->tm, nm, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n > 0) {
                        for (unsigned k = 0; k < (unsigned)n; k++)
                                msg_done(u, k, true);
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == ENOBUFS)) {
                        /* keep the rest in place: datagrams [sent, n_tx) */
                        return -EAGAIN;
                }
                if (u->tmsg[0] > 1 && (errno == EINVAL || errno == EIO || errno == EOPNOTSUPP)) {
                        /* the kernel or the device will not segment: one
                         * datagram per message from now on */
                        u->gso = false;
                        u->st.gso_off++;
                        continue;
                }
                /* these datagrams cannot go (no route, its peer's ICMP error,
                 * too big for the path): drop them alone */
                msg_done(u, 0, false);
        }
        u->n_tx = u->sent = 0;
        return 0;
}

int udp_recv(udp_sock *u) {
        u->r_cap = u->gro ? UDP_RX_GRO_MSGS : UDP_RX_MSGS;
        size_t each = u->gro ? UDP_RX_GRO_BYTES : UDP_DGRAM_MAX;
        for (unsigned i = 0; i < u->r_cap; i++) {
                u->riov[i] = (struct iovec){ u->rbuf + i * each, each };
                u->rm[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &u->rsrc[i],
                                                          .msg_namelen = sizeof(u->rsrc[i]),
                                                          .msg_iov = &u->riov[i],
                                                          .msg_iovlen = 1 } };
                if (u->gro) {
                        u->rm[i].msg_hdr.msg_control = u->rctl[i].buf;
                        u->rm[i].msg_hdr.msg_controllen = sizeof(u->rctl[i].buf);
                }
        }
        u->r_n = u->r_i = 0;
        u->r_off = 0;
        int n;
        do
                n = recvmmsg(u->fd, u->rm, u->r_cap, MSG_DONTWAIT, NULL);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return errno == EAGAIN ? 0 : -errno;
        for (int i = 0; i < n; i++) {
                struct msghdr *h = &u->rm[i].msg_hdr;
                u->st.bytes_in += u->rm[i].msg_len;
                u->rseg[i] = 0;
                for (struct cmsghdr *c = h->msg_controllen ? CMSG_FIRSTHDR(h) : NULL; c; c = CMSG_NXTHDR(h, c))
                        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO &&
                            c->cmsg_len >= CMSG_LEN(sizeof(int))) {
                                int seg;
                                memcpy(&seg, CMSG_DATA(c), sizeof(seg));
                                if (seg > 0 && (unsigned)seg < u->rm[i].msg_len) {
                                        u->rseg[i] = (uint16_t)MIN(seg, UINT16_MAX);
                                        u->st.gro_msgs++;
                                }
                        }
                if (h->msg_flags & MSG_TRUNC) {
                        u->st.truncated++;
                        u->rm[i].msg_len = 0; /* nothing of it is fed */
                }
        }
        u->r_n = (unsigned)n;
        return n;
}

bool udp_rx_next(udp_sock *u, udp_dgram *ret) {
        while (u->r_i < u->r_n) {
                unsigned i = u->r_i;
                size_t total = u->rm[i].msg_len, seg = u->rseg[i] ? u->rseg[i] : total;
                if (u->r_off >= total) {
                        u->r_i++;
                        u->r_off = 0;
                        continue;
                }
                size_t len = MIN(seg, total - u->r_off);
                const uint8_t *d = (const uint8_t *)u->riov[i].iov_base + u->r_off;
                u->r_off += len;
                u->st.dgrams_in++;
                if (len > UDP_DGRAM_MAX) {
                        u->st.truncated++; /* no EFCP datagram is this long */
                        continue;
                }
                *ret = (udp_dgram){ .data = d, .len = len, .src = &u->rsrc[i],
                                    .srclen = u->rm[i].msg_hdr.msg_namelen };
                dgtap(true, d, len, ret->src, ret->srclen);
                return true;
        }
        return false;
}
