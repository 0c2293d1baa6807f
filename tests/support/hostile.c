/*
 * hostile.c — see hostile.h.
 */
#include "support/hostile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

void fdset_snapshot(fdset *s) {
        memset(s, 0, sizeof(*s));
        DIR *d = opendir("/proc/self/fd");
        if (!d)
                return;
        int self = dirfd(d);
        for (struct dirent *e; (e = readdir(d));) {
                int fd = atoi(e->d_name);
                if (e->d_name[0] != '.' && fd != self && fd >= 0 && fd < HOSTILE_FDS_MAX)
                        s->open[fd] = true;
        }
        closedir(d);
}

int fdset_new_since(const fdset *before, int *ret_fds, int max) {
        fdset now;
        int n = 0;
        fdset_snapshot(&now);
        for (int fd = 0; fd < HOSTILE_FDS_MAX && n < max; fd++)
                if (now.open[fd] && !before->open[fd])
                        ret_fds[n++] = fd;
        return n;
}

static bool link_has(int fd, const char *what) {
        char path[64], target[128];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        if (n <= 0)
                return false;
        target[n] = 0;
        return strstr(target, what) != NULL;
}

bool fd_is_eventfd(int fd) { return link_has(fd, "eventfd"); }
bool fd_is_socket(int fd) { return link_has(fd, "socket:"); }

/* Empty what can be read from fd without blocking. */
static void drain_now(int fd) {
        char buf[4096];
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0)
                return;
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        for (int i = 0; i < 100000 && read(fd, buf, sizeof(buf)) > 0; i++)
                ;
        fcntl(fd, F_SETFL, fl);
}

int hostile_fd(int fd, unsigned mode) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0)
                return -errno;
        if (mode & (HOSTILE_DRAIN | HOSTILE_FILL))
                drain_now(fd);
        if (mode & HOSTILE_FILL) {
                if (fd_is_eventfd(fd)) {
                        uint64_t v = UINT64_MAX - 1; /* the counter's maximum */
                        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
                        if (write(fd, &v, sizeof(v)) != sizeof(v))
                                return -errno;
                } else if (fd_is_socket(fd)) {
                        int small = 1;
                        char junk[4096];
                        memset(junk, 0x5A, sizeof(junk));
                        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
                        for (int i = 0; i < 100000; i++)
                                if (send(fd, junk, sizeof(junk), MSG_DONTWAIT | MSG_NOSIGNAL) <= 0)
                                        break;
                }
        }
        if ((mode & HOSTILE_SHUTDOWN) && fd_is_socket(fd))
                shutdown(fd, SHUT_RDWR);
        if (mode & HOSTILE_CLEAR_NONBLOCK)
                fl &= ~O_NONBLOCK;
        return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

void hostile_ring(int fd) {
        if (fd_is_eventfd(fd)) {
                uint64_t one = 1;
                int fl = fcntl(fd, F_GETFL);
                fcntl(fd, F_SETFL, fl | O_NONBLOCK);
                (void)!write(fd, &one, sizeof(one));
                fcntl(fd, F_SETFL, fl);
        } else if (fd_is_socket(fd)) {
                (void)send(fd, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        }
}

void hostile_fds(const int *fds, int n, unsigned mode) {
        for (int i = 0; i < n; i++)
                (void)hostile_fd(fds[i], mode);
}

void mapset_snapshot(mapset *s, const char *name) {
        s->n = 0;
        FILE *f = fopen("/proc/self/maps", "r");
        if (!f)
                return;
        char line[512];
        while (fgets(line, sizeof(line), f) && s->n < HOSTILE_MAPS_MAX) {
                unsigned long lo, hi;
                char perms[8];
                if (!strstr(line, name) || sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 ||
                    perms[3] != 's')
                        continue;
                s->lo[s->n] = lo;
                s->len[s->n] = hi - lo;
                s->n++;
        }
        fclose(f);
}

void *mapset_new_since(const mapset *before, const char *name, size_t *ret_len) {
        mapset now;
        mapset_snapshot(&now, name);
        for (int i = 0; i < now.n; i++) {
                bool old = false;
                for (int j = 0; j < before->n && !old; j++)
                        old = before->lo[j] == now.lo[i];
                if (!old) {
                        if (ret_len)
                                *ret_len = now.len[i];
                        return (void *)now.lo[i];
                }
        }
        return NULL;
}

/* ---- the mutator --------------------------------------------------------- */

static int map_file(const mutator *m, struct stat *st);
static uint64_t maps_inode(uintptr_t lo, size_t len);

void hostile_record(void *mem, const flow_layout *l, int ring, uint64_t pos, uint64_t tag,
                    uint32_t len, uint32_t flags) {
        uint8_t *rec = flow_data_of(mem, l, ring) + (pos & (l->ring_size - 1) & ~(uint64_t)15);
        memcpy(rec + 8, &len, 4);
        memcpy(rec + 12, &flags, 4);
        atomic_store_explicit((_Atomic uint64_t *)rec, tag, memory_order_release);
}

void sync_init(sync_pipe *s) { CHECK_OK(pipe(s->fd)); }
void sync_post(sync_pipe *s) { CHECK_EQ(write(s->fd[1], "!", 1), 1); }
void sync_wait(sync_pipe *s, int timeout_ms) {
        struct pollfd p = { .fd = s->fd[0], .events = POLLIN };
        CHECK_EQ(poll(&p, 1, timeout_ms), 1);
        char c;
        CHECK_EQ(read(s->fd[0], &c, 1), 1);
}

void mutator_init(mutator *m, uint64_t seed, void *mem, size_t len, int side, const int *fds,
                  int n_fds) {
        memset(m, 0, sizeof(*m));
        m->rng = seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
        if (!m->rng)
                m->rng = 1;
        m->mem = mem;
        if (len <= FLOW_DATA_OFF)
                abort();
        m->layout.ring_size = (len - FLOW_DATA_OFF) / 2;
        m->layout.cap = m->layout.ring_size;
        m->layout.total = len;
        m->side = side;
        m->n_fds = n_fds < 64 ? n_fds : 64;
        memcpy(m->fds, fds, (size_t)m->n_fds * sizeof(int));
        m->shutdown_pct = 2;
        struct stat st;
        if (map_file(m, &st) == 0) {
                m->dev = (uint64_t)st.st_dev;
                m->ino = (uint64_t)st.st_ino;
        } else {
                m->by_maps = true;
                m->ino = maps_inode((uintptr_t)mem, len);
        }
}

/* The file mapped at exactly [mem, mem + total), by /proc/self/map_files. */
static int map_file(const mutator *m, struct stat *st) {
        char path[96];
        snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)(uintptr_t)m->mem,
                 (unsigned long)((uintptr_t)m->mem + m->layout.total));
        return stat(path, st);
}

/* The inode of the shared mapping at exactly [lo, lo + len) as
 * /proc/self/maps shows it; 0 if there is none. */
static uint64_t maps_inode(uintptr_t lo, size_t len) {
        FILE *f = fopen("/proc/self/maps", "r");
        if (!f)
                return 0;
        char line[512];
        uint64_t ino = 0;
        while (fgets(line, sizeof(line), f)) {
                unsigned long a, b, i;
                char perms[8];
                if (sscanf(line, "%lx-%lx %7s %*s %*s %lu", &a, &b, perms, &i) == 4 && a == lo &&
                    b - a == len && perms[3] == 's') {
                        ino = i;
                        break;
                }
        }
        fclose(f);
        return ino;
}

/* Is the region still the mapping mutator_init was given? */
static bool region_alive(const mutator *m) {
        if (m->by_maps)
                return m->ino && maps_inode((uintptr_t)m->mem, m->layout.total) == m->ino;
        struct stat st;
        return map_file(m, &st) == 0 && (uint64_t)st.st_dev == m->dev && (uint64_t)st.st_ino == m->ino;
}

uint64_t mutator_rand(mutator *m) {
        uint64_t x = m->rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        m->rng = x;
        return x * 0x2545F4914F6CDD1Dull;
}

/* A value a hostile peer would try in place of near (an index or count). */
static uint64_t adversarial(mutator *m, uint64_t near) {
        switch (mutator_rand(m) % 12) {
        case 0: return 0;
        case 1: return near;
        case 2: return near + 16;
        case 3: return near - 16;
        case 4: return near + m->layout.ring_size;
        case 5: return near - m->layout.ring_size;
        case 6: return RING_POS_MAX;
        case 7: return UINT64_MAX - 15;
        case 8: return 1ull << 62;
        case 9: return near + 16 * (mutator_rand(m) % 64);
        case 10: return near + 1;
        default: return mutator_rand(m);
        }
}

int mutator_step(mutator *m) {
        if (!region_alive(m)) {
                m->gone++;
                return -1;
        }
        uint64_t r = mutator_rand(m);
        int ring = (int)(r >> 8) & 1;
        struct ring_ctl *c = flow_ctl_of(m->mem, ring);
        struct flow_hdr *h = flow_hdr_of(m->mem);
        int kind;
        m->steps++;
        switch (r % 16) {
        case 0: case 1: case 2: { /* a control word of either ring */
                kind = MUT_CTL;
                switch ((r >> 16) % 9) {
                case 0: atomic_store(&c->head, adversarial(m, atomic_load(&c->head))); break;
                case 1: atomic_store(&c->tail, adversarial(m, atomic_load(&c->tail))); break;
                case 2: atomic_store(&c->msgs_w, adversarial(m, atomic_load(&c->msgs_w))); break;
                case 3: atomic_store(&c->msgs_r, adversarial(m, atomic_load(&c->msgs_r))); break;
                case 4: atomic_store(&c->bytes_w, mutator_rand(m)); break;
                case 5: atomic_store(&c->bytes_r, mutator_rand(m)); break;
                case 6: atomic_store(&c->drops, mutator_rand(m)); break;
                case 7: atomic_store(&c->rx_sleep, (uint32_t)mutator_rand(m) & 3); break;
                default: atomic_store(&c->tx_sleep, (uint32_t)mutator_rand(m) & 3); break;
                }
                break;
        }
        case 3: case 4: case 5: { /* a record header where a reader looks */
                kind = MUT_RECORD;
                uint64_t pos = (atomic_load(&c->tail) & ~(uint64_t)15) + 16 * (mutator_rand(m) % 8);
                uint64_t tag = mutator_rand(m) % 4 ? pos << 2 | (mutator_rand(m) & 3)
                                                   : mutator_rand(m);
                uint32_t len = mutator_rand(m) % 2 ? (uint32_t)(mutator_rand(m) % 256)
                                                   : (uint32_t)mutator_rand(m);
                uint32_t flags = (uint32_t)mutator_rand(m) % 3;
                hostile_record(m->mem, &m->layout, ring, pos, tag, len, flags);
                break;
        }
        case 6: { /* payload bytes */
                kind = MUT_DATA;
                uint8_t *d = flow_data_of(m->mem, &m->layout, ring);
                uint64_t off = mutator_rand(m) % m->layout.ring_size;
                d[off] = (uint8_t)mutator_rand(m);
                break;
        }
        case 7: { /* an end record, a reason without its NUL */
                kind = MUT_END;
                static const uint32_t codes[] = { 0, 1, 2, 3, 4, 5, 77, 0xFFFFFFFFu };
                struct flow_end *e = &h->end[(r >> 20) & 1];
                memset(e->reason, 'A' + (int)(mutator_rand(m) % 26), sizeof(e->reason));
                atomic_store(&e->code, codes[mutator_rand(m) % 8]);
                break;
        }
        case 8: { /* run state: asleep, CPU, waiting */
                kind = MUT_RUN;
                struct flow_run *run = &h->run[(r >> 20) & 1];
                atomic_store(&run->blocked, (uint32_t)mutator_rand(m) & 1);
                atomic_store(&run->cpu, (uint32_t)mutator_rand(m));
                atomic_store(&run->waiting, (uint32_t)mutator_rand(m) & 1);
                break;
        }
        case 9: /* cancel slots (call channels) */
                kind = MUT_CANCEL;
                atomic_store(&h->cancel.next, mutator_rand(m));
                atomic_store(&h->cancel.ids[mutator_rand(m) % FLOW_CANCEL_SLOTS], mutator_rand(m));
                break;
        case 10: case 11: /* a descriptor's shared flags and contents */
                kind = MUT_FD_FLAGS;
                if (m->n_fds) {
                        static const unsigned modes[] = {
                                HOSTILE_CLEAR_NONBLOCK, HOSTILE_FILL | HOSTILE_CLEAR_NONBLOCK,
                                HOSTILE_DRAIN | HOSTILE_CLEAR_NONBLOCK, HOSTILE_FILL, HOSTILE_DRAIN
                        };
                        (void)hostile_fd(m->fds[mutator_rand(m) % (uint64_t)m->n_fds],
                                         modes[mutator_rand(m) % 5]);
                }
                break;
        case 12: case 13: /* ring whatever it can */
                kind = MUT_FD_RING;
                if (m->n_fds)
                        hostile_ring(m->fds[mutator_rand(m) % (uint64_t)m->n_fds]);
                break;
        default: /* now and then, hang one up */
                kind = MUT_FD_SHUTDOWN;
                if (m->n_fds && mutator_rand(m) % 100 < m->shutdown_pct)
                        (void)hostile_fd(m->fds[mutator_rand(m) % (uint64_t)m->n_fds],
                                         HOSTILE_SHUTDOWN);
                break;
        }
        m->by_kind[kind]++;
        return kind;
}
