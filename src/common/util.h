/*
 * util.h — small shared utilities: limits and defaults of the facility,
 * monotonic time, deadlines from timeouts, fd helpers, CPU relax.
 * No I/O policy here; everything is safe to call from the library.
 */
#pragma once

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* qos defaults and hard limits (documented in ipcf.h). */
#define QOS_DEFAULT_RING (1u << 20)              /* 1 MiB per direction */
#define QOS_DEFAULT_UNBOUNDED (64ull << 20)      /* 64 MiB per direction */
#define QOS_DEFAULT_MAX_MSG (256u << 10)         /* 256 KiB */
#define QOS_DEFAULT_SPIN_US 10u
#define QOS_LIMIT_MAX_MSG (64u << 20)            /* 64 MiB */
#define QOS_LIMIT_RING (1ull << 30)              /* 1 GiB */
#define QOS_LIMIT_UNBOUNDED (16ull << 30)        /* 16 GiB */
#define QOS_LIMIT_SPIN_US 100000u
#define QOS_LIMIT_CACHE_MSGS 65536u

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define ALIGN_UP(x, a) (((x) + ((a)-1)) & ~((__typeof__(x))(a)-1))

static inline uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A deadline from a timeout in ms: UINT64_MAX for -1 (never), now for 0. */
static inline uint64_t deadline_from_timeout(int timeout_ms) {
        if (timeout_ms < 0)
                return UINT64_MAX;
        return now_ns() + (uint64_t)timeout_ms * 1000000u;
}

/* Milliseconds left until deadline for poll(): -1 for never, rounded up. */
static inline int deadline_poll_ms(uint64_t deadline) {
        if (deadline == UINT64_MAX)
                return -1;
        uint64_t now = now_ns();
        if (now >= deadline)
                return 0;
        uint64_t ms = (deadline - now + 999999u) / 1000000u;
        return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield");
#endif
}

static inline uint64_t next_pow2_u64(uint64_t x) {
        if (x <= 1)
                return 1;
        return 1ull << (64 - __builtin_clzll(x - 1));
}

/* The plural ending of a count: "s" unless n is 1 ("%zu flow%s", n,
 * plural(n)): "1 flow", "0 flows", "2 flows". */
static inline const char *plural(uint64_t n) {
        return n == 1 ? "" : "s";
}

/* Close fd if >= 0 and return -1, for `fd = safe_close(fd);`. Keeps errno. */
int safe_close(int fd);
/* Write 1 to an eventfd, ignoring a full counter. */
void efd_signal(int efd);
/* Drain an eventfd (non-blocking). Returns true if it was readable. */
bool efd_drain(int efd);
/* strlcpy semantics: always NUL-terminates when size > 0; returns strlen(src). */
size_t str_copy(char *dst, const char *src, size_t size);
/* Replace every byte of s outside printable ASCII (0x20..0x7e) with '?': a
 * reason another process wrote, before anyone prints it or sends it on. */
void str_printable(char *s);
