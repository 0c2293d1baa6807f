/*
 * progress.c — what `ipcf cat -v` and `ipcf listen -v` say about a long
 * transfer: once a second a line on stderr with the bytes and messages sent
 * and received so far and the rate over the last second,
 *   ipcf: cat x: sent 12.0 MiB in 48 msgs, received 0 B in 0 msgs, 11.9 MiB/s
 * and, if any such line was printed, a summary when the flow ends:
 *   ipcf: cat x: done in 3.02 s: sent 36.0 MiB in 144 msgs, received ..., 11.9 MiB/s
 * A transfer shorter than a second prints nothing. The loops that move the
 * bytes call the counters and bound their waits by cli_progress_timeout(),
 * so a line comes on time even when nothing moves.
 */
#include "cli/cli.h"

#include <stdatomic.h>
#include <stdio.h>

#define PROGRESS_PERIOD_NS 1000000000ull

void cli_progress_start(cli_progress *p, const char *what, bool on) {
        p->on = on;
        p->what = what;
        p->start_ns = p->last_ns = cli_now_ns();
        p->next_ns = p->start_ns + PROGRESS_PERIOD_NS;
        p->last_bytes = p->recv_bytes = p->recv_msgs = 0;
        atomic_store_explicit(&p->sent_bytes, 0, memory_order_relaxed);
        atomic_store_explicit(&p->sent_msgs, 0, memory_order_relaxed);
        p->reports = 0;
}

void cli_progress_sent(cli_progress *p, size_t len) {
        atomic_fetch_add_explicit(&p->sent_bytes, len, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->sent_msgs, 1, memory_order_relaxed);
}

void cli_progress_received(cli_progress *p, size_t len) {
        p->recv_bytes += len;
        p->recv_msgs++;
}

int cli_progress_timeout(const cli_progress *p, int timeout_ms) {
        if (!p->on)
                return timeout_ms;
        uint64_t now = cli_now_ns();
        int due = now >= p->next_ns ? 0 : (int)((p->next_ns - now + 999999u) / 1000000u);
        return timeout_ms < 0 || due < timeout_ms ? due : timeout_ms;
}

/* "sent 12.0 MiB in 48 msgs, received 0 B in 0 msgs" into buf. */
static const char *progress_counts(const cli_progress *p, char *buf, size_t cap, uint64_t *ret_total) {
        uint64_t sb = atomic_load_explicit(&p->sent_bytes, memory_order_relaxed);
        uint64_t sm = atomic_load_explicit(&p->sent_msgs, memory_order_relaxed);
        char b1[32], b2[32], m1[32], m2[32];
        snprintf(buf, cap, "sent %s in %s msgs, received %s in %s msgs",
                 cli_fmt_bytes(b1, sizeof(b1), (double)sb), cli_fmt_count(m1, sizeof(m1), (double)sm),
                 cli_fmt_bytes(b2, sizeof(b2), (double)p->recv_bytes),
                 cli_fmt_count(m2, sizeof(m2), (double)p->recv_msgs));
        *ret_total = sb + p->recv_bytes;
        return buf;
}

void cli_progress_tick(cli_progress *p) {
        if (!p->on)
                return;
        uint64_t now = cli_now_ns();
        if (now < p->next_ns)
                return;
        char counts[160], rate[32];
        uint64_t total;
        progress_counts(p, counts, sizeof(counts), &total);
        double secs = (double)(now - p->last_ns) / 1e9;
        fprintf(stderr, "ipcf: %s: %s, %s/s\n", p->what, counts,
                cli_fmt_bytes(rate, sizeof(rate), (double)(total - p->last_bytes) / secs));
        p->last_ns = now;
        p->last_bytes = total;
        p->next_ns = now + PROGRESS_PERIOD_NS;
        p->reports++;
}

void cli_progress_end(cli_progress *p) {
        if (!p->on || p->reports == 0)
                return;
        char counts[160], rate[32];
        uint64_t total;
        progress_counts(p, counts, sizeof(counts), &total);
        double secs = (double)(cli_now_ns() - p->start_ns) / 1e9;
        fprintf(stderr, "ipcf: %s: done in %.2f s: %s, %s/s\n", p->what, secs, counts,
                cli_fmt_bytes(rate, sizeof(rate), (double)total / secs));
}
