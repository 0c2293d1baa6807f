/*
 * udp.c — the daemon's UDP socket (udp.h).
 */
#include "daemon/hosts/udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"

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

void udp_addr_from_conf(const udp_sock *u, const conf_addr *c, efcp_addr *ret) {
        struct sockaddr_storage ss;
        socklen_t l = sockaddr_of(u->family, c, &ss);
        memset(ret, 0, sizeof(*ret));
        memcpy(ret->bytes, &ss, l);
        ret->len = l;
}

int udp_open(udp_sock *u, const conf_addr *addr) {
        memset(u, 0, sizeof(*u));
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
        for (unsigned i = 0; i < UDP_BATCH; i++) {
                u->riov[i] = (struct iovec){ u->rbuf[i], UDP_DGRAM_MAX };
                u->tiov[i] = (struct iovec){ u->tbuf[i], 0 };
        }
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
        u->tm[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = u->tdst[i].bytes,
                                                  .msg_namelen = u->tdst[i].len,
                                                  .msg_iov = &u->tiov[i],
                                                  .msg_iovlen = 1 } };
}

int udp_flush(udp_sock *u) {
        while (u->sent < u->n_tx) {
                int n = sendmmsg(u->fd, u->tm + u->sent, u->n_tx - u->sent, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n > 0) {
                        for (int i = 0; i < n; i++)
                                u->st.bytes_out += u->tiov[u->sent + (unsigned)i].iov_len;
                        u->st.dgrams_out += (uint64_t)n;
                        u->sent += (unsigned)n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == ENOBUFS)) {
                        /* keep the rest in place: slots [sent, n_tx) */
                        return -EAGAIN;
                }
                /* this datagram cannot go (no route, its peer's ICMP error,
                 * too big for the path): drop it alone */
                u->st.send_errors++;
                u->sent++;
        }
        u->n_tx = u->sent = 0;
        return 0;
}

int udp_recv(udp_sock *u) {
        for (unsigned i = 0; i < UDP_BATCH; i++)
                u->rm[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &u->rsrc[i],
                                                          .msg_namelen = sizeof(u->rsrc[i]),
                                                          .msg_iov = &u->riov[i],
                                                          .msg_iovlen = 1 } };
        int n;
        do
                n = recvmmsg(u->fd, u->rm, UDP_BATCH, MSG_DONTWAIT, NULL);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return errno == EAGAIN ? 0 : -errno;
        for (int i = 0; i < n; i++) {
                u->st.bytes_in += u->rm[i].msg_len;
                if (u->rm[i].msg_hdr.msg_flags & MSG_TRUNC) {
                        u->st.truncated++;
                        u->rm[i].msg_len = 0; /* fed as nothing: dropped */
                }
        }
        u->st.dgrams_in += (uint64_t)n;
        return n;
}
