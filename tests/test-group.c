/*
 * test-group.c — shared-memory groups through the public API against the
 * real daemon: membership, the robust lock, bounds, guard pages, resize under
 * writers, dissolve under mapped members, reclamation, the bounded buffer
 * (full capacity, timeouts, many producers and consumers with checksums,
 * corruption), and named segments. At most two busy processes at a time.
 */
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/test.h"

static test_daemon d;

static void start(void) {
        test_daemon_start(&d, NULL, NULL);
}

/* The entry of name in the facility's listing, or -ENOENT. */
static int find_entry(const char *name, ipcf_group_entry *ret) {
        ipcf_group_entry *v = NULL;
        size_t n = 0;
        int r = ipcf_group_list(&v, &n);
        if (r < 0)
                return r;
        r = -ENOENT;
        for (size_t i = 0; i < n; i++)
                if (strcmp(v[i].name, name) == 0) {
                        *ret = v[i];
                        r = 0;
                }
        ipcf_free(v);
        return r;
}

/* Wait (bounded) until the facility counts n members in name. */
static int wait_members(const char *name, uint32_t n) {
        ipcf_group_entry e;
        for (int i = 0; i < 200; i++) {
                int r = find_entry(name, &e);
                if (r < 0)
                        return r;
                if (e.members == n)
                        return 0;
                usleep(5000);
        }
        return -ETIMEDOUT;
}

static bool fd_readable(int fd, int timeout_ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        return poll(&p, 1, timeout_ms) == 1;
}

TEST_TIMEOUT(create_join_read_write, 20) {
        start();
        CHECK_OK(ipcf_group_create("g.basic", 10000, NULL));
        CHECK_ERR(ipcf_group_create("g.basic", 4096, NULL), -EEXIST);
        CHECK_ERR(ipcf_group_create("bad name", 4096, NULL), -EINVAL);
        CHECK_ERR(ipcf_group_create("g.zero", 0, NULL), -EINVAL);
        CHECK_ERR(ipcf_group_join("g.none"), -ENOENT);
        int g = CHECK_OK(ipcf_group_join("g.basic"));
        void *p;
        uint64_t size;
        CHECK_OK(ipcf_group_ptr(g, &p, &size));
        CHECK_EQ(size, 12288); /* rounded up to pages */
        char buf[100], back[100];
        test_fill(buf, sizeof(buf), 7);
        CHECK_EQ(ipcf_group_write(g, 5000, buf, sizeof(buf)), sizeof(buf));
        CHECK_EQ(ipcf_group_read(g, 5000, back, sizeof(back)), sizeof(back));
        CHECK_MEM(buf, back, sizeof(buf));
        CHECK_MEM((char *)p + 5000, buf, sizeof(buf));
        /* A second member (another process) sees the same bytes. */
        pid_t c = fork();
        CHECK(c >= 0);
        if (c == 0) {
                int h = ipcf_group_join("g.basic");
                char b2[100];
                if (h < 0 || ipcf_group_read(h, 5000, b2, sizeof(b2)) != sizeof(b2) ||
                    memcmp(b2, buf, sizeof(b2)) != 0)
                        _exit(1);
                _exit(ipcf_group_write(h, 0, "child", 5) == 5 ? 0 : 2);
        }
        CHECK_EQ(test_wait(c, 5000), 0);
        CHECK_EQ(ipcf_group_read(g, 0, back, 5), 5);
        CHECK_MEM(back, "child", 5);
        CHECK_OK(wait_members("g.basic", 1)); /* the child died: the facility sees it */
        ipcf_group_entry e;
        CHECK_OK(find_entry("g.basic", &e));
        CHECK_EQ(e.kind, 0);
        CHECK_EQ(e.size, 12288);
        ipcf_peer_info who[4];
        CHECK_EQ(ipcf_group_members("g.basic", who, 4), 1);
        CHECK_EQ(who[0].pid, getpid());
        CHECK_OK(ipcf_dealloc(g, NULL));
        CHECK_ERR(ipcf_dealloc(g, NULL), -EBADF);
        CHECK_ERR(ipcf_group_read(g, 0, back, 1), -EBADF);
        CHECK_OK(ipcf_group_dissolve("g.basic"));
        CHECK_ERR(find_entry("g.basic", &e), -ENOENT); /* no member left: reclaimed */
        test_daemon_stop(&d);
}

TEST_TIMEOUT(write_past_end_refused, 20) {
        start();
        CHECK_OK(ipcf_group_create("g.bounds", 4096, NULL));
        int g = CHECK_OK(ipcf_group_join("g.bounds"));
        char buf[64];
        memset(buf, 0xab, sizeof(buf));
        CHECK_EQ(ipcf_group_write(g, 4096 - 64, buf, 64), 64);
        CHECK_ERR(ipcf_group_write(g, 4096 - 63, buf, 64), -ERANGE);
        CHECK_ERR(ipcf_group_write(g, 4096, buf, 1), -ERANGE);
        CHECK_ERR(ipcf_group_write(g, UINT64_MAX, buf, 2), -ERANGE);
        CHECK_ERR(ipcf_group_read(g, 1, buf, 4096), -ERANGE);
        CHECK_EQ(ipcf_group_write(g, 4096, buf, 0), 0); /* empty at the end is fine */
        CHECK_EQ(ipcf_group_write(g, 0, NULL, 0), 0);
        CHECK_EQ(ipcf_group_read(g, 0, NULL, 0), 0);
        CHECK_ERR(ipcf_group_write(g, 0, NULL, 1), -EINVAL);
        /* Nothing of the refused writes landed: the tail is as written. */
        char back[64];
        CHECK_EQ(ipcf_group_read(g, 4096 - 64, back, 64), 64);
        CHECK_MEM(back, buf, 64);
        CHECK_OK(ipcf_dealloc(g, NULL));
        test_daemon_stop(&d);
}

/* A raw pointer overrun hits the guard page: SIGSEGV, not someone's memory. */
static void overrun_child(void *arg) {
        int g = ipcf_group_join("g.guard");
        void *p;
        uint64_t size;
        if (g < 0 || ipcf_group_ptr(g, &p, &size) < 0)
                _exit(3);
        volatile char *c = p;
        signal(SIGSEGV, SIG_DFL); /* AddressSanitizer's handler would exit(1) */
        c[size - 1] = 1;                  /* the last byte is fine */
        if ((intptr_t)arg > 0)
                c[size] = 1; /* past the end: faults */
        else
                c[-1] = 1; /* before the start: faults */
        _exit(4);
}

TEST_TIMEOUT(guard_pages_fault, 20) {
        start();
        CHECK_OK(ipcf_group_create("g.guard", 8192, NULL));
        CHECK_EQ(test_wait(test_fork(overrun_child, (void *)1), 5000), 128 + SIGSEGV);
        CHECK_EQ(test_wait(test_fork(overrun_child, (void *)-1), 5000), 128 + SIGSEGV);
        test_daemon_stop(&d);
}

/* Root only: children of another uid are admitted exactly as listed. */
TEST_TIMEOUT(membership_enforced, 30) {
        if (geteuid() != 0) {
                printf("  skipped: needs root to setuid(65534)\n");
                return;
        }
        test_daemon_start(&d, NULL, (const char *[]){ "--shared", NULL });
        CHECK_OK(ipcf_group_create("g.closed", 4096, NULL));
        uid_t nobody = 65534;
        ipcf_group_opts by_uid = { .size = sizeof(by_uid), .uids = &nobody, .n_uids = 1 };
        CHECK_OK(ipcf_group_create("g.byuid", 4096, &by_uid));
        gid_t nogroup = 65534;
        ipcf_group_opts by_gid = { .size = sizeof(by_gid), .gids = &nogroup, .n_gids = 1 };
        CHECK_OK(ipcf_group_create("g.bygid", 4096, &by_gid));
        const char *prog[] = { "test-group" };
        ipcf_group_opts by_name = { .size = sizeof(by_name), .names = prog, .n_names = 1 };
        CHECK_OK(ipcf_group_create("g.byname", 4096, &by_name));
        const char *other[] = { "not-this-program" };
        ipcf_group_opts by_other = { .size = sizeof(by_other), .names = other, .n_names = 1 };
        CHECK_OK(ipcf_group_create("g.byother", 4096, &by_other));
        pid_t p = fork();
        CHECK(p >= 0);
        if (p == 0) {
                if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(1);
                if (ipcf_group_join("g.closed") != -EACCES)
                        _exit(2);
                if (ipcf_group_join("g.byother") != -EACCES)
                        _exit(3);
                int a = ipcf_group_join("g.byuid"), b = ipcf_group_join("g.bygid"),
                    c = ipcf_group_join("g.byname");
                if (a < 0 || b < 0 || c < 0)
                        _exit(4);
                if (ipcf_group_write(a, 0, "x", 1) != 1)
                        _exit(5);
                /* Not the owner: may not dissolve, resize, or see the closed group. */
                if (ipcf_group_dissolve("g.byuid") != -EPERM || ipcf_group_resize("g.byuid", 8192) != -EPERM)
                        _exit(6);
                if (ipcf_group_members("g.closed", NULL, 0) != -EACCES)
                        _exit(7);
                _exit(0);
        }
        CHECK_EQ(test_wait(p, 10000), 0);
        int g = CHECK_OK(ipcf_group_join("g.byuid"));
        char x;
        CHECK_EQ(ipcf_group_read(g, 0, &x, 1), 1);
        CHECK_EQ(x, 'x');
        CHECK_OK(ipcf_dealloc(g, NULL));
        test_daemon_stop(&d);
}

/* A member that dies holding the lock: the next locker is told, repairs,
 * and the lock works normally afterwards. */
static void die_holding_lock(void *arg) {
        int g = ipcf_group_join("g.lock");
        if (g < 0 || ipcf_group_lock(g, 1000) != 0)
                _exit(1);
        uint64_t half = 1; /* half of an update: field a written, b not */
        ipcf_group_write(g, 0, &half, sizeof(half));
        raise(SIGKILL);
}

TEST_TIMEOUT(lock_holder_dies, 20) {
        start();
        CHECK_OK(ipcf_group_create("g.lock", 4096, NULL));
        int g = CHECK_OK(ipcf_group_join("g.lock"));
        CHECK_EQ(test_wait(test_fork(die_holding_lock, NULL), 5000), 128 + SIGKILL);
        CHECK_EQ(ipcf_group_lock(g, 1000), IPCF_GROUP_INCONSISTENT);
        uint64_t a, b;
        CHECK_EQ(ipcf_group_read(g, 0, &a, 8), 8);
        CHECK_EQ(ipcf_group_read(g, 8, &b, 8), 8);
        CHECK(a != b); /* inconsistent indeed: repair */
        CHECK_EQ(ipcf_group_write(g, 8, &a, 8), 8);
        CHECK_OK(ipcf_group_consistent(g));
        CHECK_OK(ipcf_group_unlock(g));
        CHECK_EQ(ipcf_group_lock(g, 1000), 0);
        CHECK_ERR(ipcf_group_consistent(g), -EINVAL);
        CHECK_OK(ipcf_group_unlock(g));
        CHECK_ERR(ipcf_group_unlock(g), -EPERM);
        CHECK_OK(ipcf_dealloc(g, NULL));
        test_daemon_stop(&d);
}

/* If the repairer forgets ipcf_group_consistent, the lock is dead for all. */
TEST_TIMEOUT(lock_not_repaired, 20) {
        start();
        CHECK_OK(ipcf_group_create("g.lock", 4096, NULL));
        int g = CHECK_OK(ipcf_group_join("g.lock"));
        CHECK_EQ(test_wait(test_fork(die_holding_lock, NULL), 5000), 128 + SIGKILL);
        /* (a timeout: the death is seen once the daemon has noticed it) */
        CHECK_EQ(ipcf_group_lock(g, 1000), IPCF_GROUP_INCONSISTENT);
        CHECK_OK(ipcf_group_unlock(g));
        CHECK_ERR(ipcf_group_lock(g, 0), -ENOTRECOVERABLE);
        CHECK_OK(ipcf_dealloc(g, NULL));
        test_daemon_stop(&d);
}

static void hold_lock(void *arg) {
        int g = ipcf_group_join("g.busy");
        int *pipefd = arg;
        if (g < 0 || ipcf_group_lock(g, 1000) != 0)
                _exit(1);
        (void)!write(pipefd[1], "L", 1);
        char c;
        (void)!read(pipefd[0], &c, 1); /* hold it until the parent is done */
        ipcf_group_unlock(g);
        _exit(0);
}

TEST_TIMEOUT(lock_timeouts, 20) {
        start();
        CHECK_OK(ipcf_group_create("g.busy", 4096, NULL));
        int g = CHECK_OK(ipcf_group_join("g.busy"));
        int to_parent[2], to_child[2];
        CHECK_OK(pipe(to_parent));
        CHECK_OK(pipe(to_child));
        int fds[2] = { to_child[0], to_parent[1] };
        pid_t c = test_fork(hold_lock, fds);
        char x;
        CHECK_EQ(read(to_parent[0], &x, 1), 1);
        CHECK_ERR(ipcf_group_lock(g, 0), -EAGAIN);
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_group_lock(g, 100), -ETIMEDOUT);
        CHECK(test_now_ms() - t0 >= 90);
        CHECK_EQ(write(to_child[1], "U", 1), 1);
        CHECK_EQ(ipcf_group_lock(g, 5000), 0);
        CHECK_ERR(ipcf_group_lock(g, 0), -EDEADLK);
        CHECK_OK(ipcf_group_unlock(g));
        CHECK_EQ(test_wait(c, 5000), 0);
        CHECK_OK(ipcf_dealloc(g, NULL));
        test_daemon_stop(&d);
}

/* A writer keeps writing and checking a pattern in the first page through
 * the API while the owner grows and shrinks the group under it. */
static void resize_writer(void *arg) {
        int g = ipcf_group_join("g.resize");
        if (g < 0)
                _exit(1);
        uint64_t t_end = test_now_ms() + 1500;
        unsigned long n = 0;
        while (test_now_ms() < t_end) {
                uint64_t v = ++n, back = 0;
                if (ipcf_group_write(g, 64, &v, 8) != 8 || ipcf_group_read(g, 64, &back, 8) != 8 ||
                    back != v)
                        _exit(2);
                /* Past the first page: may be out of range while shrunk. */
                ssize_t r = ipcf_group_write(g, 4096 * 3, &v, 8);
                if (r != 8 && r != -ERANGE)
                        _exit(3);
        }
        _exit(0);
}

TEST_TIMEOUT(resize_while_writing, 30) {
        start();
        CHECK_OK(ipcf_group_create("g.resize", 4096, NULL));
        int g = CHECK_OK(ipcf_group_join("g.resize"));
        CHECK_EQ(ipcf_group_write(g, 100, "keep", 4), 4);
        int fd = CHECK_OK(ipcf_fd(g));
        CHECK(!fd_readable(fd, 0));
        pid_t c = test_fork(resize_writer, NULL);
        /* 1.2 s of rounds, and 11 at least however slow a loaded machine
         * makes them (how many fit is a figure, not a check) */
        uint64_t t0 = test_now_ms(), t_end = t0 + 1200;
        unsigned rounds = 0;
        while (test_now_ms() < t_end || rounds <= 10) {
                CHECK_OK(ipcf_group_resize("g.resize", 4096 * (2 + rounds % 7)));
                CHECK_OK(ipcf_group_resize("g.resize", 4096));
                rounds++;
        }
        printf("  %u rounds of grow and shrink in %llu ms\n", rounds, (unsigned long long)(test_now_ms() - t0));
        CHECK_EQ(test_wait(c, 10000), 0);
        /* The raw user is told through the fd and remaps. */
        CHECK_OK(ipcf_group_resize("g.resize", 1 << 20));
        CHECK(fd_readable(fd, 1000));
        CHECK_EQ(ipcf_group_remap(g), 1);
        CHECK(!fd_readable(fd, 0));
        void *p;
        uint64_t size;
        CHECK_OK(ipcf_group_ptr(g, &p, &size));
        CHECK_EQ(size, 1 << 20);
        CHECK_MEM((char *)p + 100, "keep", 4); /* data kept across resizes */
        ((char *)p)[size - 1] = 1;            /* the new end is mapped */
        CHECK_EQ(ipcf_group_remap(g), 0);
        /* A shrink: the API refuses the cut part at once. */
        CHECK_OK(ipcf_group_resize("g.resize", 8192));
        CHECK_ERR(ipcf_group_write(g, 8192, "x", 1), -ERANGE);
        CHECK_OK(ipcf_group_ptr(g, &p, &size));
        CHECK_EQ(size, 8192);
        ipcf_group_entry e;
        CHECK_OK(find_entry("g.resize", &e));
        CHECK_EQ(e.size, 8192);
        CHECK(e.generation > 2 * rounds);
        CHECK_OK(ipcf_dealloc(g, NULL));
        test_daemon_stop(&d);
}

static char *raw_p;

static void raw_overrun(void *arg) {
        signal(SIGSEGV, SIG_DFL); /* AddressSanitizer's handler would exit(1) */
        ((volatile char *)raw_p)[(uintptr_t)arg] = 1;
        _exit(4);
}

/* Raw pointers across resizes: an old pointer never faults; after a remap
 * the guard page sits right after the new size; bytes written through a
 * stale pointer into a cut part never reappear when the group grows back. */
TEST_TIMEOUT(resize_raw_pointers, 20) {
        start();
        CHECK_OK(ipcf_group_create("g.raw", 16384, NULL));
        int g = CHECK_OK(ipcf_group_join("g.raw"));
        void *p;
        uint64_t size;
        CHECK_OK(ipcf_group_ptr(g, &p, &size));
        CHECK_EQ(size, 16384);
        CHECK_OK(ipcf_group_resize("g.raw", 4096));
        CHECK(fd_readable(ipcf_fd(g), 1000));
        ((volatile char *)p)[8192] = 'S'; /* stale: past the new size, no fault */
        CHECK_EQ(ipcf_group_remap(g), 1);
        CHECK_OK(ipcf_group_ptr(g, &p, &size));
        CHECK_EQ(size, 4096);
        raw_p = p;
        CHECK_EQ(test_wait(test_fork(raw_overrun, (void *)(uintptr_t)4096), 5000), 128 + SIGSEGV);
        CHECK_OK(ipcf_group_resize("g.raw", 16384));
        char x = 1;
        CHECK_EQ(ipcf_group_read(g, 8192, &x, 1), 1);
        CHECK_EQ(x, 0);
        /* The API remapped (read above); the raw pointer's view is pinned:
         * still mapped, the same memory. */
        ((volatile char *)p)[100] = 'P';
        CHECK_EQ(ipcf_group_read(g, 100, &x, 1), 1);
        CHECK_EQ(x, 'P');
        CHECK_EQ(ipcf_group_remap(g), 1); /* retires it: the caller's view changed */
        CHECK_EQ(ipcf_group_remap(g), 0);
        CHECK_OK(ipcf_group_ptr(g, &p, &size));
        CHECK_EQ(size, 16384);
        CHECK_EQ(((char *)p)[100], 'P');
        CHECK_OK(ipcf_dealloc(g, NULL));
        test_daemon_stop(&d);
}

static void mapped_member(void *arg) {
        int *pipefd = arg;
        int g = ipcf_group_join("g.dis");
        if (g < 0)
                _exit(1);
        (void)!write(pipefd[1], "J", 1);
        if (!fd_readable(ipcf_fd(g), 5000))
                _exit(2);
        char x;
        if (ipcf_group_read(g, 0, &x, 1) != -EIDRM || ipcf_group_write(g, 0, &x, 1) != -EIDRM ||
            ipcf_group_lock(g, 0) != -EIDRM)
                _exit(3);
        (void)!read(pipefd[0], &x, 1); /* stay mapped until told */
        _exit(0); /* dies without exiting the group: the facility notices */
}

TEST_TIMEOUT(dissolve_while_mapped, 20) {
        start();
        CHECK_OK(ipcf_group_create("g.dis", 4096, NULL));
        int g = CHECK_OK(ipcf_group_join("g.dis"));
        int to_parent[2], to_child[2];
        CHECK_OK(pipe(to_parent));
        CHECK_OK(pipe(to_child));
        int fds[2] = { to_child[0], to_parent[1] };
        pid_t c = test_fork(mapped_member, fds);
        char x;
        CHECK_EQ(read(to_parent[0], &x, 1), 1);
        CHECK_OK(ipcf_group_dissolve("g.dis"));
        CHECK_ERR(ipcf_group_dissolve("g.dis"), -ENOENT);
        CHECK_ERR(ipcf_group_join("g.dis"), -ENOENT);
        CHECK_ERR(ipcf_group_write(g, 0, "x", 1), -EIDRM);
        /* The name is free at once; the old memory waits for its members. */
        CHECK_OK(ipcf_group_create("g.dis", 4096, NULL));
        ipcf_group_entry *v;
        size_t n;
        CHECK_OK(ipcf_group_list(&v, &n));
        CHECK_EQ(n, 2);
        int dissolved = -1;
        for (size_t i = 0; i < n; i++)
                if (v[i].state == 1)
                        dissolved = (int)i;
        CHECK(dissolved >= 0);
        CHECK_EQ(v[dissolved].members, 2);
        ipcf_free(v);
        CHECK_OK(ipcf_dealloc(g, NULL));
        CHECK_EQ(write(to_child[1], "E", 1), 1);
        CHECK_EQ(test_wait(c, 5000), 0);
        /* Both gone: only the new group is left (once the daemon has seen
         * both go: 10 s at most, for a loaded machine). */
        for (int i = 0; i < 1000; i++) {
                CHECK_OK(ipcf_group_list(&v, &n));
                ipcf_free(v);
                if (n == 1)
                        break;
                usleep(10000);
        }
        CHECK_EQ(n, 1);
        CHECK_OK(ipcf_group_dissolve("g.dis"));
        test_daemon_stop(&d);
}

/* ---- the bounded buffer ------------------------------------------------ */

TEST_TIMEOUT(bbuf_full_capacity, 20) {
        start();
        CHECK_OK(ipcf_group_create("g.bb", 4096, NULL));
        int g = CHECK_OK(ipcf_group_join("g.bb"));
        CHECK_ERR(ipcf_bbuf_init(g, 8, 1000), -EINVAL);   /* unaligned */
        CHECK_ERR(ipcf_bbuf_init(g, 0, 8192), -ERANGE);   /* past the end */
        CHECK_EQ(ipcf_bbuf_init(g, 64, IPCF_BBUF_HDR + 100), 100);
        char in[128], out[128];
        test_fill(in, sizeof(in), 3);
        CHECK_ERR(ipcf_bbuf_put(g, 64, in, 97, 0), -EMSGSIZE);
        CHECK_EQ(ipcf_bbuf_put(g, 64, NULL, 0, 0), 0); /* an empty item */
        CHECK_EQ(ipcf_bbuf_get(g, 64, NULL, 0, 0), 0);
        /* One item of 96 bytes + its 4-byte header fills all 100 bytes. */
        CHECK_EQ(ipcf_bbuf_put(g, 64, in, 96, 0), 96);
        uint64_t bytes, items;
        CHECK_OK(ipcf_bbuf_stat(g, 64, &bytes, &items));
        CHECK_EQ(bytes, 100);
        CHECK_EQ(items, 1);
        CHECK_ERR(ipcf_bbuf_put(g, 64, in, 0, 0), -EAGAIN);
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_bbuf_put(g, 64, in, 0, 50), -ETIMEDOUT);
        CHECK(test_now_ms() - t0 >= 45);
        CHECK_ERR(ipcf_bbuf_get(g, 64, out, 95, 0), -EMSGSIZE); /* stays queued */
        CHECK_EQ(ipcf_bbuf_get(g, 64, out, sizeof(out), 0), 96);
        CHECK_MEM(out, in, 96);
        CHECK_ERR(ipcf_bbuf_get(g, 64, out, sizeof(out), 0), -EAGAIN);
        t0 = test_now_ms();
        CHECK_ERR(ipcf_bbuf_get(g, 64, out, sizeof(out), 50), -ETIMEDOUT);
        CHECK(test_now_ms() - t0 >= 45);
        /* Many laps with sizes that wrap headers and payloads at every
         * position; the sum of queued sizes reaches exactly 100 each time. */
        unsigned put_n = 0, got_n = 0;
        for (int lap = 0; lap < 300; lap++) {
                size_t a = (size_t)(lap % 40), b = 100 - 8 - a; /* two items, 100 bytes */
                test_fill(in, a, (uint64_t)lap);
                CHECK_EQ(ipcf_bbuf_put(g, 64, in, a, 0), a);
                test_fill(in, b, (uint64_t)lap + 1000);
                CHECK_EQ(ipcf_bbuf_put(g, 64, in, b, 0), b);
                put_n += 2;
                CHECK_ERR(ipcf_bbuf_put(g, 64, in, 0, 0), -EAGAIN); /* exactly full */
                char exp[128];
                CHECK_EQ(ipcf_bbuf_get(g, 64, out, sizeof(out), 0), a);
                test_fill(exp, a, (uint64_t)lap);
                CHECK_MEM(out, exp, a);
                CHECK_EQ(ipcf_bbuf_get(g, 64, out, sizeof(out), 0), b);
                test_fill(exp, b, (uint64_t)lap + 1000);
                CHECK_MEM(out, exp, b);
                got_n += 2;
                /* Shift the phase by a prime so positions move around. */
                CHECK_EQ(ipcf_bbuf_put(g, 64, in, lap % 7, 0), lap % 7);
                CHECK_EQ(ipcf_bbuf_get(g, 64, out, sizeof(out), 0), lap % 7);
        }
        CHECK_EQ(put_n, got_n);
        CHECK_OK(ipcf_dealloc(g, NULL));
        test_daemon_stop(&d);
}

/* A blocked put is woken by a get in another process, and vice versa. The
 * child says in a shared word when it is about to act (after a 100 ms
 * sleep): the parent's blocked call must return after that. (Not a time
 * since the fork: a parent preempted after fork() would see less than the
 * child's sleep.) */
static _Atomic int *bb_acting;

static void bb_slow_consumer(void *arg) {
        int g = ipcf_group_join("g.bb");
        char out[64];
        usleep(100000);
        atomic_store(bb_acting, 1);
        if (g < 0 || ipcf_bbuf_get(g, 0, out, sizeof(out), 5000) != 60)
                _exit(1);
        /* The item the parent's blocked put then queued. */
        _exit(ipcf_bbuf_get(g, 0, out, sizeof(out), 5000) == 30 ? 0 : 2);
}

static void bb_slow_producer(void *arg) {
        int g = ipcf_group_join("g.bb");
        usleep(100000);
        atomic_store(bb_acting, 1);
        _exit(g >= 0 && ipcf_bbuf_put(g, 0, "hello", 5, 0) == 5 ? 0 : 1);
}

TEST_TIMEOUT(bbuf_blocking_wakeups, 20) {
        start();
        CHECK_OK(ipcf_group_create("g.bb", 4096, NULL));
        int g = CHECK_OK(ipcf_group_join("g.bb"));
        CHECK_EQ(ipcf_bbuf_init(g, 0, IPCF_BBUF_HDR + 64), 64);
        char in[64] = { 0 };
        CHECK_EQ(ipcf_bbuf_put(g, 0, in, 60, 0), 60); /* full */
        bb_acting = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(bb_acting != MAP_FAILED);
        pid_t c = test_fork(bb_slow_consumer, NULL);
        CHECK_EQ(ipcf_bbuf_put(g, 0, in, 30, -1), 30); /* waits for the consumer */
        CHECK(atomic_load(bb_acting));
        CHECK_EQ(test_wait(c, 5000), 0);
        atomic_store(bb_acting, 0);
        c = test_fork(bb_slow_producer, NULL);
        char out[64];
        CHECK_EQ(ipcf_bbuf_get(g, 0, out, sizeof(out), -1), 5); /* waits for the producer */
        CHECK(atomic_load(bb_acting));
        CHECK_MEM(out, "hello", 5);
        CHECK_EQ(test_wait(c, 5000), 0);
        CHECK_OK(ipcf_dealloc(g, NULL));
        test_daemon_stop(&d);
}

/* Many producers and consumers: 4 producer threads in a child, 4 consumer
 * threads here; every item carries (producer, seq) and a checksum; each is
 * seen exactly once. */
#define MP_PRODUCERS 4
#define MP_CONSUMERS 4
#define MP_ITEMS 8000
#define MP_OFF 128

struct mp_item {
        uint32_t producer, seq;
        uint64_t sum;
        uint8_t payload[];
};

static int mp_group;
static _Atomic uint64_t mp_seen[MP_PRODUCERS][MP_ITEMS / 64];
static _Atomic unsigned mp_got, mp_bad;

static size_t mp_len(uint32_t p, uint32_t s) {
        return (size_t)((p * 7919u + s * 104729u) % 700u); /* 0..699 payload bytes */
}

static void *mp_produce(void *arg) {
        uint32_t p = (uint32_t)(uintptr_t)arg;
        uint8_t buf[sizeof(struct mp_item) + 700];
        struct mp_item *it = (struct mp_item *)buf;
        for (uint32_t s = 0; s < MP_ITEMS; s++) {
                size_t n = mp_len(p, s);
                it->producer = p;
                it->seq = s;
                test_fill(it->payload, n, (uint64_t)p << 32 | s);
                it->sum = test_hash(it->payload, n, s);
                if (ipcf_bbuf_put(mp_group, MP_OFF, buf, sizeof(*it) + n, 10000) < 0)
                        _exit(10);
        }
        return NULL;
}

static void mp_producers(void *arg) {
        mp_group = ipcf_group_join("g.mp");
        if (mp_group < 0)
                _exit(9);
        pthread_t t[MP_PRODUCERS];
        for (uintptr_t i = 0; i < MP_PRODUCERS; i++)
                pthread_create(&t[i], NULL, mp_produce, (void *)i);
        for (int i = 0; i < MP_PRODUCERS; i++)
                pthread_join(t[i], NULL);
}

static void *mp_consume(void *arg) {
        uint8_t buf[sizeof(struct mp_item) + 700];
        struct mp_item *it = (struct mp_item *)buf;
        while (atomic_load(&mp_got) < MP_PRODUCERS * MP_ITEMS) {
                ssize_t n = ipcf_bbuf_get(mp_group, MP_OFF, buf, sizeof(buf), 100);
                if (n == -ETIMEDOUT)
                        continue;
                if (n < (ssize_t)sizeof(*it) || it->producer >= MP_PRODUCERS || it->seq >= MP_ITEMS ||
                    (size_t)n - sizeof(*it) != mp_len(it->producer, it->seq) ||
                    test_hash(it->payload, (size_t)n - sizeof(*it), it->seq) != it->sum) {
                        atomic_fetch_add(&mp_bad, 1);
                        atomic_fetch_add(&mp_got, 1);
                        continue;
                }
                uint64_t bit = 1ull << (it->seq % 64);
                if (atomic_fetch_or(&mp_seen[it->producer][it->seq / 64], bit) & bit)
                        atomic_fetch_add(&mp_bad, 1); /* a duplicate */
                atomic_fetch_add(&mp_got, 1);
        }
        return NULL;
}

TEST_TIMEOUT(bbuf_many_producers_consumers, 60) {
        start();
        CHECK_OK(ipcf_group_create("g.mp", 8192, NULL));
        mp_group = CHECK_OK(ipcf_group_join("g.mp"));
        CHECK_OK(ipcf_bbuf_init(mp_group, MP_OFF, 4096));
        uint64_t t0 = test_now_ms();
        pid_t c = test_fork(mp_producers, NULL);
        pthread_t t[MP_CONSUMERS];
        for (int i = 0; i < MP_CONSUMERS; i++)
                pthread_create(&t[i], NULL, mp_consume, NULL);
        for (int i = 0; i < MP_CONSUMERS; i++)
                pthread_join(t[i], NULL);
        CHECK_EQ(test_wait(c, 10000), 0);
        CHECK_EQ(atomic_load(&mp_bad), 0);
        CHECK_EQ(atomic_load(&mp_got), MP_PRODUCERS * MP_ITEMS);
        for (int p = 0; p < MP_PRODUCERS; p++)
                for (int w = 0; w < MP_ITEMS / 64; w++)
                        CHECK_EQ(atomic_load(&mp_seen[p][w]), UINT64_MAX); /* nothing lost */
        uint64_t bytes;
        CHECK_OK(ipcf_bbuf_stat(mp_group, MP_OFF, &bytes, NULL));
        CHECK_EQ(bytes, 0);
        printf("  %u items through 4 KiB in %llu ms\n", MP_PRODUCERS * MP_ITEMS,
               (unsigned long long)(test_now_ms() - t0));
        CHECK_OK(ipcf_dealloc(mp_group, NULL));
        test_daemon_stop(&d);
}

/* Through a fresh handle each time: a handle remembers the counters it saw
 * (valid lower bounds) and would see a corruption only at its next look. */
static ssize_t fresh_get(void *out, size_t cap) {
        int h = ipcf_group_join("g.bad");
        ssize_t r = h < 0 ? h : ipcf_bbuf_get(h, 0, out, cap, 0);
        ipcf_dealloc(h, NULL);
        return r;
}

static ssize_t fresh_put(const void *buf, size_t len) {
        int h = ipcf_group_join("g.bad");
        ssize_t r = h < 0 ? h : ipcf_bbuf_put(h, 0, buf, len, 0);
        ipcf_dealloc(h, NULL);
        return r;
}

/* A hostile member scribbles over the buffer: calls fail -EPROTO, no crash. */
TEST_TIMEOUT(bbuf_corrupt, 20) {
        start();
        CHECK_OK(ipcf_group_create("g.bad", 4096, NULL));
        int g = CHECK_OK(ipcf_group_join("g.bad"));
        CHECK_EQ(ipcf_bbuf_init(g, 0, 1024), 1024 - IPCF_BBUF_HDR);
        CHECK_EQ(ipcf_bbuf_put(g, 0, "abcdef", 6, 0), 6);
        char out[64];
        void *p;
        uint64_t size;
        CHECK_OK(ipcf_group_ptr(g, &p, &size));
        uint64_t *cap = (uint64_t *)((char *)p + 8), *head = (uint64_t *)((char *)p + 64),
                 *tail = (uint64_t *)((char *)p + 128); /* the layout of bbuf.c */
        uint8_t *data = (uint8_t *)p + IPCF_BBUF_HDR;
        /* An item length beyond what is queued. */
        uint32_t saved_len;
        memcpy(&saved_len, data, 4);
        memset(data, 0xff, 4);
        CHECK_ERR(fresh_get(out, sizeof(out)), -EPROTO);
        memcpy(data, &saved_len, 4);
        /* head far beyond tail. */
        uint64_t h0 = *head;
        *head = *tail + 1000000;
        CHECK_ERR(fresh_put("x", 1), -EPROTO);
        CHECK_ERR(fresh_get(out, sizeof(out)), -EPROTO);
        CHECK_ERR(ipcf_bbuf_stat(g, 0, NULL, NULL), -EPROTO);
        *head = h0;
        /* A capacity past the end of the group. */
        uint64_t c0 = *cap;
        *cap = size;
        CHECK_ERR(fresh_put("x", 1), -EPROTO);
        *cap = 0;
        CHECK_ERR(fresh_get(out, sizeof(out)), -EPROTO);
        *cap = c0;
        /* Less than a header queued. */
        *head = *tail + 2;
        CHECK_ERR(fresh_get(out, sizeof(out)), -EPROTO);
        *head = h0;
        /* Repaired by hand: works again. */
        CHECK_EQ(fresh_get(out, sizeof(out)), 6);
        CHECK_MEM(out, "abcdef", 6);
        /* No buffer at all there. */
        CHECK_ERR(ipcf_bbuf_get(g, 1024, out, sizeof(out), 0), -EPROTO);
        CHECK_OK(ipcf_group_dissolve("g.bad"));
        CHECK_ERR(ipcf_bbuf_put(g, 0, "x", 1, 0), -EIDRM);
        CHECK_OK(ipcf_dealloc(g, NULL));
        test_daemon_stop(&d);
}

/* ---- named segments (shm_open style) ----------------------------------- */

TEST_TIMEOUT(shm_segments, 20) {
        start();
        CHECK_ERR(ipcf_shm_open("s.one", O_RDWR, 0600), -ENOENT);
        int fd = CHECK_OK(ipcf_shm_open("s.one", O_CREAT | O_RDWR, 0600));
        CHECK_ERR(ipcf_shm_open("s.one", O_CREAT | O_EXCL | O_RDWR, 0600), -EEXIST);
        CHECK_OK(ftruncate(fd, 8192));
        char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        CHECK(p != MAP_FAILED);
        strcpy(p + 4000, "segment");
        /* Another open sees the same memory; a read-only one cannot write. */
        int fd2 = CHECK_OK(ipcf_shm_open("s.one", O_RDWR, 0));
        char *q = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd2, 0);
        CHECK(q != MAP_FAILED);
        CHECK(strcmp(q + 4000, "segment") == 0);
        int ro = CHECK_OK(ipcf_shm_open("s.one", O_RDONLY, 0));
        CHECK(mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0) == MAP_FAILED);
        CHECK(fcntl(ro, F_GETFD) & FD_CLOEXEC);
        /* One namespace with groups. */
        CHECK_ERR(ipcf_group_create("s.one", 4096, NULL), -EEXIST);
        CHECK_ERR(ipcf_group_join("s.one"), -ENOENT);
        CHECK_OK(ipcf_group_create("g.x", 4096, NULL));
        CHECK_ERR(ipcf_shm_open("g.x", O_CREAT | O_RDWR, 0600), -EEXIST);
        ipcf_group_entry e;
        CHECK_OK(find_entry("s.one", &e));
        CHECK_EQ(e.kind, 1);
        CHECK_EQ(e.size, 8192);
        CHECK_EQ(e.mode, 0600);
        CHECK_ERR(ipcf_shm_open("s.two", O_CREAT | O_WRONLY, 0600), -EINVAL);
        CHECK_OK(ipcf_shm_unlink("s.one"));
        CHECK_ERR(ipcf_shm_unlink("s.one"), -ENOENT);
        CHECK_ERR(ipcf_shm_open("s.one", O_RDWR, 0), -ENOENT);
        CHECK_ERR(find_entry("s.one", &e), -ENOENT);
        CHECK(strcmp(q + 4000, "segment") == 0); /* mappings live on */
        munmap(p, 8192);
        munmap(q, 8192);
        close(fd);
        close(fd2);
        close(ro);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(shm_permissions, 20) {
        if (geteuid() != 0) {
                printf("  skipped: needs root to setuid(65534)\n");
                return;
        }
        test_daemon_start(&d, NULL, (const char *[]){ "--shared", NULL });
        close(CHECK_OK(ipcf_shm_open("s.private", O_CREAT | O_RDWR, 0600)));
        close(CHECK_OK(ipcf_shm_open("s.readable", O_CREAT | O_RDWR, 0604)));
        pid_t p = fork();
        CHECK(p >= 0);
        if (p == 0) {
                if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(1);
                if (ipcf_shm_open("s.private", O_RDONLY, 0) != -EACCES)
                        _exit(2);
                if (ipcf_shm_open("s.readable", O_RDWR, 0) != -EACCES)
                        _exit(3);
                if (ipcf_shm_open("s.readable", O_RDONLY, 0) < 0)
                        _exit(4);
                if (ipcf_shm_unlink("s.readable") != -EPERM)
                        _exit(5);
                ipcf_group_entry *v;
                size_t n;
                if (ipcf_group_list(&v, &n) < 0 || n != 0) /* others' names are not shown */
                        _exit(6);
                _exit(0);
        }
        CHECK_EQ(test_wait(p, 10000), 0);
        test_daemon_stop(&d);
}

/* ---- bounds and protocol ------------------------------------------------ */

TEST_TIMEOUT(quotas_and_limits, 20) {
        start();
        CHECK_ERR(ipcf_group_create("g.huge", (16ull << 30) + 1, NULL), -EINVAL);
        CHECK_ERR(ipcf_group_create("g.big", 5ull << 30, NULL), -EDQUOT); /* 4 GiB per user */
        uid_t many[17] = { 0 };
        ipcf_group_opts o = { .size = sizeof(o), .uids = many, .n_uids = 17 };
        CHECK_ERR(ipcf_group_create("g.many", 4096, &o), -EINVAL);
        CHECK_OK(ipcf_group_create("g.q0", 3ull << 30, NULL)); /* sparse: nothing touched */
        CHECK_ERR(ipcf_group_resize("g.q0", 5ull << 30), -EDQUOT);
        CHECK_ERR(ipcf_group_create("g.q1", 2ull << 30, NULL), -EDQUOT);
        CHECK_OK(ipcf_group_dissolve("g.q0"));
        char name[32];
        for (int i = 0; i < 64; i++) {
                snprintf(name, sizeof(name), "g.n%d", i);
                CHECK_OK(ipcf_group_create(name, 4096, NULL));
        }
        CHECK_ERR(ipcf_group_create("g.n64", 4096, NULL), -EDQUOT);
        CHECK_ERR(ipcf_shm_open("s.n64", O_CREAT | O_RDWR, 0600), -EDQUOT);
        CHECK_OK(ipcf_group_dissolve("g.n0"));
        CHECK_OK(ipcf_group_create("g.n64", 4096, NULL));
        test_daemon_stop(&d);
}

/* Raw control messages: malformed group requests drop the client only. */
#include "common/ctl.h"

static int raw_connect(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(d.dir) + sizeof(CTL_SOCKET_NAME) + 1 > sizeof(sa.sun_path))
                return -1;
        memcpy(sa.sun_path, d.dir, strlen(d.dir));
        sa.sun_path[strlen(d.dir)] = '/';
        memcpy(sa.sun_path + strlen(d.dir) + 1, CTL_SOCKET_NAME, sizeof(CTL_SOCKET_NAME));
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -1;
        return fd;
}

/* Send b (with fd if >= 0); returns the reply's type, 0 at EOF (dropped). */
static int raw_call(ctl_builder *b, int fd_to_pass, uint32_t *ret_errno) {
        int s = raw_connect();
        if (s < 0 || ctl_end(b) < 0 || ctl_send(s, b, &fd_to_pass, fd_to_pass >= 0) < 0)
                return -1;
        static uint8_t buf[CTL_MSG_MAX];
        int fds[CTL_FDS_MAX];
        unsigned nfds;
        ssize_t n = ctl_recv(s, buf, sizeof(buf), fds, &nfds, 0);
        for (unsigned i = 0; i < nfds; i++)
                close(fds[i]);
        close(s);
        ctl_msg m;
        if (n <= 0)
                return (int)n;
        if (ctl_msg_parse(buf, (size_t)n, &m) < 0)
                return -1;
        if (ret_errno)
                ctl_get_u32(&m, CTL_A_ERRNO, ret_errno);
        return m.type;
}

TEST_TIMEOUT(protocol_violations, 20) {
        start();
        ctl_builder *b = malloc(sizeof(*b));
        uint32_t e = 0;
        /* An ALLOW_UID of 2 bytes. */
        ctl_begin(b, CTL_GROUP_CREATE, 1);
        ctl_put_str(b, CTL_A_NAME, "g.p");
        ctl_put_u64(b, CTL_A_SHM_SIZE, 4096);
        ctl_put(b, CTL_A_ALLOW_UID, "ab", 2);
        CHECK_EQ(raw_call(b, -1, NULL), 0);
        /* An ALLOW_NAME without its NUL. */
        ctl_begin(b, CTL_GROUP_CREATE, 1);
        ctl_put_str(b, CTL_A_NAME, "g.p");
        ctl_put_u64(b, CTL_A_SHM_SIZE, 4096);
        ctl_put(b, CTL_A_ALLOW_NAME, "prog", 4);
        CHECK_EQ(raw_call(b, -1, NULL), 0);
        /* A SHM_SIZE of 4 bytes; a MEMBER_ID of 4 bytes. */
        ctl_begin(b, CTL_GROUP_RESIZE, 1);
        ctl_put_str(b, CTL_A_NAME, "g.p");
        ctl_put_u32(b, CTL_A_SHM_SIZE, 4096);
        CHECK_EQ(raw_call(b, -1, NULL), 0);
        ctl_begin(b, CTL_GROUP_EXIT, 1);
        ctl_put_u32(b, CTL_A_MEMBER_ID, 1);
        CHECK_EQ(raw_call(b, -1, NULL), 0);
        /* A name with a NUL inside. */
        ctl_begin(b, CTL_GROUP_JOIN, 1);
        ctl_put(b, CTL_A_NAME, "g\0p", 4);
        CHECK_EQ(raw_call(b, -1, NULL), 0);
        /* A descriptor where none belongs. */
        ctl_begin(b, CTL_GROUP_JOIN, 1);
        ctl_put_str(b, CTL_A_NAME, "g.p");
        CHECK_EQ(raw_call(b, 0, NULL), 0);
        /* Well-formed but bad values: an answer, not a drop. */
        ctl_begin(b, CTL_GROUP_CREATE, 1);
        ctl_put_str(b, CTL_A_NAME, "g.p");
        ctl_put_u64(b, CTL_A_SHM_SIZE, 4096);
        ctl_put_u32(b, CTL_A_GROUP_FLAGS, 7);
        CHECK_EQ(raw_call(b, -1, &e), CTL_ERROR);
        CHECK_EQ(e, EINVAL);
        ctl_begin(b, CTL_SHM_OPEN, 1);
        ctl_put_str(b, CTL_A_NAME, "s.p");
        ctl_put_u32(b, CTL_A_SHM_FLAGS, 1u << 20);
        CHECK_EQ(raw_call(b, -1, &e), CTL_ERROR);
        CHECK_EQ(e, EINVAL);
        ctl_begin(b, CTL_GROUP_EXIT, 1);
        ctl_put_u64(b, CTL_A_MEMBER_ID, 12345); /* not ours */
        CHECK_EQ(raw_call(b, -1, &e), CTL_ERROR);
        CHECK_EQ(e, ENOENT);
        free(b);
        /* The daemon is unharmed. */
        CHECK_OK(ipcf_group_create("g.p", 4096, NULL));
        int g = CHECK_OK(ipcf_group_join("g.p"));
        CHECK_OK(ipcf_dealloc(g, NULL));
        test_daemon_stop(&d);
}

/* The tool: ipcf shm create / write / cat / ls / info / dissolve. */
static char *run_tool(const char *stdin_text, const char *args, int *ret_status) {
        char *bin = test_build_path("bin/ipcf"), cmd[512];
        snprintf(cmd, sizeof(cmd), "printf '%s' | %s %s 2>&1", stdin_text, bin, args);
        free(bin);
        FILE *f = popen(cmd, "r");
        static char out[4096];
        size_t n = f ? fread(out, 1, sizeof(out) - 1, f) : 0;
        out[n] = 0;
        int st = f ? pclose(f) : -1;
        *ret_status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        return out;
}

TEST_TIMEOUT(cli_shm, 30) {
        start();
        int st;
        run_tool("", "shm create g.cli 8k", &st);
        CHECK_EQ(st, 0);
        run_tool("hello-group", "shm write g.cli 100", &st);
        CHECK_EQ(st, 0);
        char *out = run_tool("", "shm cat g.cli 100 11", &st);
        CHECK_EQ(st, 0);
        CHECK(strcmp(out, "hello-group") == 0);
        out = run_tool("0123", "shm write g.cli 8190", &st);
        CHECK_EQ(st, 1);
        CHECK(strstr(out, "refused"));
        out = run_tool("", "shm ls", &st);
        CHECK_EQ(st, 0);
        CHECK(strstr(out, "g.cli") && strstr(out, "8.00 KiB") && strstr(out, "live"));
        out = run_tool("", "ls", &st); /* the facility's listing shows it too */
        CHECK_EQ(st, 0);
        CHECK(strstr(out, "SHM GROUP/SEGMENT") && strstr(out, "g.cli"));
        out = run_tool("", "ls --json", &st);
        CHECK_EQ(st, 0);
        CHECK(strstr(out, "\"shm\":[") && strstr(out, "\"name\":\"g.cli\""));
        out = run_tool("", "shm info g.cli", &st);
        CHECK_EQ(st, 0);
        CHECK(strstr(out, "0 members"));
        run_tool("", "shm frob g.cli", &st);
        CHECK_EQ(st, 2);
        run_tool("", "shm dissolve g.cli", &st);
        CHECK_EQ(st, 0);
        out = run_tool("", "shm cat g.cli", &st);
        CHECK_EQ(st, 1);
        CHECK(strstr(out, "g.cli"));
        test_daemon_stop(&d);
}

/* ipcf_group_exit from another thread ends a blocked get (-EBADF). */
static int exit_g;

static void *exit_later(void *arg) {
        usleep(100000);
        ipcf_dealloc(exit_g, NULL);
        return NULL;
}

TEST_TIMEOUT(exit_ends_blocked_wait, 20) {
        start();
        CHECK_OK(ipcf_group_create("g.exit", 8192, NULL));
        exit_g = CHECK_OK(ipcf_group_join("g.exit"));
        CHECK_OK(ipcf_bbuf_init(exit_g, 0, 4096));
        pthread_t t;
        pthread_create(&t, NULL, exit_later, NULL);
        char out[16];
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_bbuf_get(exit_g, 0, out, sizeof(out), -1), -EBADF);
        CHECK(test_now_ms() - t0 < 1000);
        pthread_join(t, NULL);
        test_daemon_stop(&d);
}

/* Joins, exits and deaths leave nothing behind in the daemon: members are
 * counted down and their descriptors closed. */
static int daemon_fds(void) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/fd", (int)d.pid);
        int n = 0;
        DIR *dir = opendir(path);
        if (!dir)
                return -1;
        while (readdir(dir))
                n++;
        closedir(dir);
        return n;
}

static void join_and_die(void *arg) {
        if (ipcf_group_join("g.churn") < 0 || ipcf_group_join("g.churn") < 0)
                _exit(1);
        raise(SIGKILL);
}

TEST_TIMEOUT(join_exit_churn, 30) {
        start();
        CHECK_OK(ipcf_group_create("g.churn", 4096, NULL));
        int g = CHECK_OK(ipcf_group_join("g.churn"));
        ipcf_group_entry e;
        CHECK_OK(find_entry("g.churn", &e)); /* a round trip: the join is all done */
        int before = daemon_fds();
        CHECK(before > 0);
        for (int i = 0; i < 200; i++) {
                int h = CHECK_OK(ipcf_group_join("g.churn"));
                CHECK_OK(ipcf_dealloc(h, NULL));
        }
        for (int i = 0; i < 10; i++)
                CHECK_EQ(test_wait(test_fork(join_and_die, NULL), 5000), 128 + SIGKILL);
        CHECK_OK(wait_members("g.churn", 1));
        CHECK_EQ(daemon_fds(), before);
        CHECK_OK(ipcf_dealloc(g, NULL));
        CHECK_OK(ipcf_group_dissolve("g.churn"));
        CHECK_ERR(find_entry("g.churn", &e), -ENOENT);
        CHECK_EQ(daemon_fds(), before - 2); /* its memfd and the bell of our notice channel */
        test_daemon_stop(&d);
}

/* A hostile member rewrites the control page (it holds the memfd): a huge
 * size and a new generation. The others remap to what the kernel backs and
 * never fault. */
#include "common/grpshm.h"

static int find_group_memfd(void) {
        DIR *dir = opendir("/proc/self/fd");
        struct dirent *e;
        int found = -1;
        while (dir && (e = readdir(dir))) {
                char path[300], target[256];
                snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
                ssize_t n = readlink(path, target, sizeof(target) - 1);
                if (n > 0) {
                        target[n] = 0;
                        if (strstr(target, "memfd:ipcf-group"))
                                found = atoi(e->d_name);
                }
        }
        if (dir)
                closedir(dir);
        return found;
}

TEST_TIMEOUT(hostile_control_page, 20) {
        start();
        CHECK_OK(ipcf_group_create("g.evil", 8192, NULL));
        int g = CHECK_OK(ipcf_group_join("g.evil"));
        int fd = find_group_memfd();
        CHECK(fd >= 0);
        struct grpshm_ctl *c = mmap(NULL, GRPSHM_CTL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        CHECK(c != MAP_FAILED);
        atomic_store(&c->size, 1ull << 40);
        atomic_fetch_add(&c->gen, 1);
        char x = 0;
        CHECK_ERR(ipcf_group_read(g, 1ull << 30, &x, 1), -ERANGE);
        CHECK_EQ(ipcf_group_read(g, 8191, &x, 1), 1);
        void *p;
        uint64_t size;
        CHECK_OK(ipcf_group_ptr(g, &p, &size));
        CHECK_EQ(size, 8192); /* what the file backs, not what the page claims */
        CHECK(ftruncate(fd, 4096) < 0); /* sealed: nobody can shrink it */
        atomic_store(&c->size, 0);
        atomic_fetch_add(&c->gen, 1);
        CHECK_ERR(ipcf_group_write(g, 0, "x", 1), -ERANGE);
        munmap(c, GRPSHM_CTL_SIZE);
        CHECK_OK(ipcf_dealloc(g, NULL));
        test_daemon_stop(&d);
}
