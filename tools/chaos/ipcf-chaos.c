/*
 * ipcf-chaos.c — the chaos driver of the local facility (issue 16): a real
 * ipcfd on a private runtime directory, and rounds of real processes using
 * flows, service calls, mailboxes, multicast groups and shared-memory
 * groups (models.h), one of
 * which — or the daemon, with --kill-daemon — is killed with SIGKILL at a
 * random moment of each round but one in five. Every message is numbered and
 * checksummed; the books (book.h) say afterwards, for every message owed to
 * a receiver, whether it was delivered, reported lost to a living party,
 * with a process that was killed, or lost unreported.
 *
 *   ipcf-chaos [--rounds N] [--seconds S] [--seed X] [--json] [--kill-daemon]
 *              [--daemon PATH] [--verbose] [--inject-loss]
 *
 * It stops after N rounds or S seconds, whichever comes first (default: 10
 * seconds). The same seed gives the same choices (not the same timing).
 * --inject-loss makes every receiver forget message 0 of each round (never
 * mark it): a silent loss the books must report (the driver's own test).
 * Exit status 0 when the invariants hold: nothing lost unreported, no
 * duplicate, no corrupt or out-of-order message, no call past its timeout,
 * no process that had to be stopped because it hung, no unexpected error,
 * the daemon alive unless the driver killed it, and the daemon's
 * descriptors back to their count at its start (its resident memory is
 * reported, not judged: the allocator keeps what it freed); 1 when one
 * does not; 2 on a usage or setup error. Each round that breaks one is
 * printed to stderr with its seed and number.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipcf.h"
#include "models.h"
#include "support/test.h"

static const chaos_model *const models[] = {
        &chaos_model_flow, &chaos_model_call, &chaos_model_mbox, &chaos_model_mcast,
        &chaos_model_group,
};
#define N_MODELS (sizeof(models) / sizeof(models[0]))
#define ROUND_LIMIT_MS 30000 /* a round's processes still alive then are hung */

typedef struct options {
        uint64_t rounds, seconds, seed;
        bool json, kill_daemon, verbose, inject_loss;
        const char *daemon;
} options;

typedef struct totals {
        chaos_tally t;
        uint64_t rounds, killed, daemon_kills, daemon_deaths, hung, setup_failures;
        uint64_t per_model[N_MODELS];
        int last_error;
        long fds_start, fds_end, rss_start, rss_end;
} totals;

/* ---- helpers of the models (models.h) ------------------------------------ */

void chaos_set_bit(_Atomic uint32_t *word, unsigned p) {
        atomic_fetch_or(word, 1u << p);
}

bool chaos_wait_bits(_Atomic uint32_t *word, uint32_t mask, unsigned timeout_ms) {
        uint64_t end = chaos_now_ms() + timeout_ms;
        while ((atomic_load(word) & mask) != mask) {
                if (chaos_now_ms() >= end)
                        return false;
                chaos_sleep_ms(1);
        }
        return true;
}

void chaos_settle(chaos_tally *t, uint64_t missing, int64_t told) {
        uint64_t reported = told < 0 ? 0 : (uint64_t)told;
        uint64_t covered = missing < reported ? missing : reported;
        t->reported += covered;
        t->lost_unreported += missing - covered;
        t->doubt += reported - covered;
}

/* ---- the daemon ------------------------------------------------------------ */

typedef struct daemon_proc {
        char dir[PATH_MAX];
        char bin[PATH_MAX];
        pid_t pid;
} daemon_proc;

/* Start ipcfd on d->dir and wait (5 s at most) until it answers. */
static int daemon_start(daemon_proc *d) {
        fflush(NULL);
        d->pid = fork();
        if (d->pid < 0)
                return -errno;
        if (d->pid == 0) {
                execl(d->bin, d->bin, "--runtime-dir", d->dir, (char *)NULL);
                _exit(127);
        }
        for (int i = 0; i < 500; i++) {
                if (ipcf_connect() == 0)
                        return 0;
                int st;
                if (waitpid(d->pid, &st, WNOHANG) == d->pid)
                        return -ECHILD;
                chaos_sleep_ms(10);
        }
        return -ETIMEDOUT;
}

static void daemon_kill(daemon_proc *d) {
        if (d->pid > 0) {
                kill(d->pid, SIGKILL);
                waitpid(d->pid, NULL, 0);
                d->pid = 0;
        }
}

static void daemon_stop(daemon_proc *d) {
        if (d->pid > 0) {
                kill(d->pid, SIGTERM);
                if (test_wait(d->pid, 5000) == -ETIMEDOUT)
                        fprintf(stderr, "ipcf-chaos: ipcfd did not stop on SIGTERM\n");
                d->pid = 0;
        }
}

/* Descriptors the daemon holds now, or -1. */
static long daemon_fds(const daemon_proc *d) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/fd", (int)d->pid);
        DIR *dir = opendir(path);
        if (!dir)
                return -1;
        long n = 0;
        for (struct dirent *e; (e = readdir(dir));)
                n += e->d_name[0] != '.';
        closedir(dir);
        return n;
}

/* The daemon's resident memory in KiB (VmRSS), or -1. */
static long daemon_rss_kb(const daemon_proc *d) {
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)d->pid);
        FILE *f = fopen(path, "r");
        if (!f)
                return -1;
        long kb = -1;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
                        break;
        fclose(f);
        return kb;
}

/* Whether the daemon died without being killed (then it is reaped). */
static bool daemon_died(daemon_proc *d) {
        int st;
        if (d->pid <= 0 || waitpid(d->pid, &st, WNOHANG) != d->pid)
                return false;
        fprintf(stderr, "ipcf-chaos: ipcfd died by itself (%s %d)\n",
                WIFSIGNALED(st) ? "signal" : "status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        d->pid = 0;
        return true;
}

/* The daemon's descriptors, once back at want (or after 3 s: as they are). */
static long daemon_fds_settled(const daemon_proc *d, long want) {
        long n = daemon_fds(d);
        for (int i = 0; i < 300 && n != want; i++) {
                chaos_sleep_ms(10);
                n = daemon_fds(d);
        }
        return n;
}

/* ---- a round --------------------------------------------------------------- */

typedef struct round_ctx {
        const chaos_model *m;
        chaos_book *b;
        uint32_t alive;
        int victim; /* process index, -1 none, -2 the daemon */
} round_ctx;

static void round_reap(round_ctx *r) {
        for (unsigned p = 0; p < r->m->procs; p++) {
                if (!(r->alive & (1u << p)))
                        continue;
                if (waitpid(r->b->pid[p], NULL, WNOHANG) == r->b->pid[p])
                        r->alive &= ~(1u << p);
        }
}

static uint64_t round_deliveries(const chaos_book *b) {
        uint64_t n = 0;
        for (uint32_t i = 0; i < b->n_msgs; i++)
                n += chaos_got_any(b, i);
        return n;
}

/* Kill the victim (if it still runs) at delay_ms after the round is set up. */
static void round_kill(round_ctx *r, daemon_proc *d, totals *tot, unsigned delay_ms) {
        uint64_t at = chaos_now_ms() + delay_ms;
        while (chaos_now_ms() < at && r->alive) {
                chaos_sleep_ms(1);
                round_reap(r);
        }
        if (r->victim == -2) {
                daemon_kill(d);
                r->b->daemon_killed = true;
                tot->daemon_kills++;
        } else if (r->victim >= 0 && (r->alive & (1u << r->victim))) {
                kill(r->b->pid[r->victim], SIGKILL);
                r->b->killed[r->victim] = true;
                tot->killed++;
        }
}

/* Let the round run out: step the model, stop what hangs. */
static void round_finish(round_ctx *r, totals *tot, uint64_t started) {
        uint64_t seen = round_deliveries(r->b), since = chaos_now_ms();
        while (r->alive) {
                chaos_sleep_ms(5);
                round_reap(r);
                uint64_t now = chaos_now_ms(), got = round_deliveries(r->b);
                if (got != seen)
                        seen = got, since = now;
                if (r->m->step)
                        r->m->step(r->b, r->alive, now - since);
                if (now - started > ROUND_LIMIT_MS) {
                        for (unsigned p = 0; p < r->m->procs; p++)
                                if (r->alive & (1u << p)) {
                                        kill(r->b->pid[p], SIGKILL);
                                        waitpid(r->b->pid[p], NULL, 0);
                                        tot->hung++;
                                }
                        r->alive = 0;
                }
        }
        if (r->m->step) /* what the round made is ended even if all died */
                r->m->step(r->b, 0, UINT64_MAX);
}

static const char *victim_name(const round_ctx *r) {
        static char s[32];
        if (r->victim == -1)
                return "none";
        if (r->victim == -2)
                return "daemon";
        snprintf(s, sizeof(s), "process %d", r->victim);
        return s;
}

/* One round: returns false when it could not be set up. */
static bool round_run(const options *o, daemon_proc *d, chaos_book *b, uint64_t *rng,
                      uint32_t number, totals *tot) {
        unsigned mi = (unsigned)(chaos_rand(rng) % N_MODELS);
        round_ctx r = { .m = models[mi], .b = b, .victim = -1 };
        memset(b, 0, sizeof(*b));
        b->round = number;
        b->seed = o->seed;
        b->n_msgs = 20 + (uint32_t)(chaos_rand(rng) % 1500);
        snprintf(b->name, sizeof(b->name), "chaos-%" PRIu32, number);
        static const uint32_t paces[] = { 0, 0, 20, 100, 300 };
        b->pace_us = paces[chaos_rand(rng) % 5];
        b->forget_first = o->inject_loss;
        uint64_t pick = chaos_rand(rng) % 100;
        if (pick >= 20) {
                if (o->kill_daemon && r.m->daemon_kill_ok && pick >= 90)
                        r.victim = -2;
                else
                        r.victim = (int)((pick >> 1) % r.m->procs);
        }
        unsigned delay = (unsigned)(chaos_rand(rng) % 200);
        int err = r.m->setup(b, rng);
        if (err < 0) {
                fprintf(stderr, "ipcf-chaos: round %" PRIu32 " (%s): setup: %s\n", number,
                        r.m->name, ipcf_strerror(err));
                tot->setup_failures++;
                return false;
        }
        uint64_t started = chaos_now_ms();
        fflush(NULL);
        for (unsigned p = 0; p < r.m->procs; p++) {
                pid_t pid = fork();
                if (pid == 0) {
                        r.m->run(b, p);
                        _exit(0);
                }
                if (pid < 0) {
                        perror("ipcf-chaos: fork");
                        exit(2);
                }
                b->pid[p] = pid;
                r.alive |= 1u << p;
        }
        uint32_t all = (1u << r.m->procs) - 1;
        while ((atomic_load(&b->ready) & all) != all && chaos_now_ms() - started < 5000 &&
               r.alive == all) {
                chaos_sleep_ms(1);
                round_reap(&r);
        }
        round_kill(&r, d, tot, delay);
        round_finish(&r, tot, started);
        if (!b->daemon_killed && daemon_died(d)) {
                tot->daemon_deaths++;
                b->daemon_killed = true; /* start it again */
        }
        if (b->daemon_killed) { /* a new daemon: its descriptors from its start */
                if (daemon_start(d) < 0) {
                        fprintf(stderr, "ipcf-chaos: ipcfd did not start again\n");
                        exit(2);
                }
                tot->fds_start = daemon_fds(d);
                tot->rss_start = daemon_rss_kb(d);
        }
        chaos_tally t = { 0 };
        r.m->tally(b, &t);
        t.corrupt = atomic_load(&b->corrupt);
        t.out_of_order = atomic_load(&b->out_of_order);
        t.late = atomic_load(&b->late);
        t.errors = atomic_load(&b->errors);
        if (t.errors)
                tot->last_error = atomic_load(&b->last_error);
        bool bad = t.lost_unreported || t.duplicates || t.corrupt || t.out_of_order || t.late ||
                   t.errors;
        if (bad || o->verbose)
                fprintf(stderr,
                        "%sround %" PRIu32 " (seed %" PRIu64 "): %s, %" PRIu32 " messages, pace %" PRIu32 " us, killed %s "
                        "after %u ms: sent %" PRIu64 ", delivered %" PRIu64 ", reported %" PRIu64
                        ", with killed %" PRIu64 ", lost unreported %" PRIu64 ", duplicates %" PRIu64
                        ", corrupt %" PRIu64 ", out of order %" PRIu64 ", late %" PRIu64
                        ", errors %" PRIu64 "%s%s\n",
                        bad ? "ipcf-chaos: BROKEN " : "", number, o->seed, r.m->name, b->n_msgs, b->pace_us,
                        victim_name(&r), delay, t.sent, t.delivered, t.reported, t.with_killed,
                        t.lost_unreported, t.duplicates, t.corrupt, t.out_of_order, t.late,
                        t.errors, t.errors ? ", last: " : "",
                        t.errors ? ipcf_strerror(atomic_load(&b->last_error)) : "");
        chaos_tally *a = &tot->t;
        a->sent += t.sent, a->delivered += t.delivered, a->reported += t.reported;
        a->with_killed += t.with_killed, a->lost_unreported += t.lost_unreported;
        a->duplicates += t.duplicates, a->corrupt += t.corrupt, a->out_of_order += t.out_of_order;
        a->late += t.late, a->errors += t.errors, a->doubt += t.doubt;
        tot->per_model[mi]++;
        tot->rounds++;
        return true;
}

/* ---- options and the report ------------------------------------------------ */

static void usage(void) {
        fprintf(stderr, "usage: ipcf-chaos [--rounds N] [--seconds S] [--seed X] [--json] "
                        "[--kill-daemon] [--daemon PATH] [--verbose] [--inject-loss]\n");
        exit(2);
}

static uint64_t number_arg(const char *s) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 0);
        if (errno || end == s || *end || *s == '-')
                usage();
        return v;
}

static void parse(int argc, char **argv, options *o) {
        static const struct option opts[] = {
                { "rounds", required_argument, NULL, 'r' }, { "seconds", required_argument, NULL, 's' },
                { "seed", required_argument, NULL, 'S' },   { "json", no_argument, NULL, 'j' },
                { "kill-daemon", no_argument, NULL, 'k' },  { "daemon", required_argument, NULL, 'd' },
                { "verbose", no_argument, NULL, 'v' },      { "inject-loss", no_argument, NULL, 'i' },
                { NULL, 0, NULL, 0 },
        };
        *o = (options){ .seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) };
        for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
                switch (c) {
                case 'r': o->rounds = number_arg(optarg); break;
                case 's': o->seconds = number_arg(optarg); break;
                case 'S': o->seed = number_arg(optarg); break;
                case 'j': o->json = true; break;
                case 'k': o->kill_daemon = true; break;
                case 'd': o->daemon = optarg; break;
                case 'v': o->verbose = true; break;
                case 'i': o->inject_loss = true; break;
                default: usage();
                }
        }
        if (optind != argc)
                usage();
        if (!o->rounds && !o->seconds)
                o->seconds = 10;
}

static bool holds(const totals *t) {
        return t->rounds > 0 && !t->t.lost_unreported && !t->t.duplicates && !t->t.corrupt &&
               !t->t.out_of_order && !t->t.late && !t->t.errors && !t->hung && !t->daemon_deaths &&
               t->fds_end == t->fds_start;
}

static void report(const options *o, const totals *t, uint64_t ms) {
        const chaos_tally *a = &t->t;
        if (o->json) {
                printf("{\"seed\": %" PRIu64 ", \"seconds\": %.1f, \"rounds\": %" PRIu64
                       ", \"rounds_by_model\": {\"flow\": %" PRIu64 ", \"call\": %" PRIu64
                       ", \"mbox\": %" PRIu64 ", \"mcast\": %" PRIu64 ", \"group\": %" PRIu64
                       "}, \"processes_killed\": %" PRIu64
                       ", \"daemon_kills\": %" PRIu64 ", \"messages_sent\": %" PRIu64
                       ", \"delivered\": %" PRIu64 ", \"reported_lost\": %" PRIu64
                       ", \"with_killed_process\": %" PRIu64 ", \"lost_unreported\": %" PRIu64
                       ", \"duplicates\": %" PRIu64 ", \"corrupt\": %" PRIu64
                       ", \"out_of_order\": %" PRIu64 ", \"late_calls\": %" PRIu64
                       ", \"reported_and_delivered\": %" PRIu64 ", \"unexpected_errors\": %" PRIu64
                       ", \"hung\": %" PRIu64 ", \"daemon_deaths\": %" PRIu64
                       ", \"daemon_fds_start\": %ld, \"daemon_fds_end\": %ld"
                       ", \"daemon_rss_kb_start\": %ld, \"daemon_rss_kb_end\": %ld, \"holds\": %s}\n",
                       o->seed, (double)ms / 1000.0, t->rounds, t->per_model[0], t->per_model[1],
                       t->per_model[2], t->per_model[3], t->per_model[4], t->killed, t->daemon_kills, a->sent,
                       a->delivered, a->reported, a->with_killed, a->lost_unreported, a->duplicates,
                       a->corrupt, a->out_of_order, a->late, a->doubt, a->errors, t->hung,
                       t->daemon_deaths, t->fds_start, t->fds_end, t->rss_start, t->rss_end,
                       holds(t) ? "true" : "false");
                return;
        }
        printf("ipcf-chaos: seed %" PRIu64 ", %.1f s, %" PRIu64 " rounds (flow %" PRIu64 ", call %" PRIu64
               ", mbox %" PRIu64 ", mcast %" PRIu64 ", group %" PRIu64 ")\n",
               o->seed, (double)ms / 1000.0, t->rounds, t->per_model[0], t->per_model[1],
               t->per_model[2], t->per_model[3], t->per_model[4]);
        printf("  processes killed        %" PRIu64 " (and the daemon %" PRIu64 " times)\n", t->killed,
               t->daemon_kills);
        printf("  messages sent           %" PRIu64 "\n", a->sent);
        printf("  delivered               %" PRIu64 "\n", a->delivered);
        printf("  reported lost           %" PRIu64 "\n", a->reported);
        printf("  with a killed process   %" PRIu64 "\n", a->with_killed);
        printf("  lost unreported         %" PRIu64 "\n", a->lost_unreported);
        printf("  duplicates              %" PRIu64 "\n", a->duplicates);
        printf("  corrupt / out of order  %" PRIu64 " / %" PRIu64 "\n", a->corrupt, a->out_of_order);
        printf("  calls past timeout      %" PRIu64 "\n", a->late);
        printf("  reported and delivered  %" PRIu64 "\n", a->doubt);
        printf("  unexpected errors       %" PRIu64 "%s%s\n", a->errors, a->errors ? ", last: " : "",
               a->errors ? ipcf_strerror(t->last_error) : "");
        printf("  hung processes          %" PRIu64 "\n", t->hung);
        printf("  daemon died by itself   %" PRIu64 "\n", t->daemon_deaths);
        printf("  daemon descriptors      %ld at start, %ld at end\n", t->fds_start, t->fds_end);
        printf("  daemon memory (RSS)     %ld KiB at start, %ld KiB at end\n", t->rss_start, t->rss_end);
        printf("  invariants              %s\n", holds(t) ? "hold" : "BROKEN");
}

/* The ipcfd beside this program unless --daemon says otherwise. */
static void daemon_path(const options *o, daemon_proc *d) {
        if (o->daemon) {
                snprintf(d->bin, sizeof(d->bin), "%s", o->daemon);
                return;
        }
        ssize_t n = readlink("/proc/self/exe", d->bin, sizeof(d->bin) - 16);
        if (n <= 0) {
                snprintf(d->bin, sizeof(d->bin), "ipcfd");
                return;
        }
        d->bin[n] = 0;
        char *slash = strrchr(d->bin, '/');
        strcpy(slash ? slash + 1 : d->bin, "ipcfd");
}

int main(int argc, char **argv) {
        options o;
        parse(argc, argv, &o);
        signal(SIGPIPE, SIG_IGN);
        daemon_proc d = { 0 };
        daemon_path(&o, &d);
        const char *tmp = getenv("TMPDIR");
        snprintf(d.dir, sizeof(d.dir), "%s/ipcf-chaos.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(d.dir)) {
                perror("ipcf-chaos: mkdtemp");
                return 2;
        }
        setenv("IPCF_RUNTIME_DIR", d.dir, 1);
        setenv("IPCF_NO_AUTOSTART", "1", 1);
        int err = daemon_start(&d);
        if (err < 0) {
                fprintf(stderr, "ipcf-chaos: %s did not start: %s\n", d.bin, strerror(-err));
                return 2;
        }
        chaos_book *b = mmap(NULL, sizeof(*b), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (b == MAP_FAILED) {
                perror("ipcf-chaos: mmap");
                return 2;
        }
        totals tot = { .fds_start = daemon_fds(&d), .rss_start = daemon_rss_kb(&d) };
        uint64_t rng = o.seed ^ 0x5851F42D4C957F2Dull, start = chaos_now_ms();
        for (uint32_t n = 1;; n++) {
                if (o.rounds && tot.rounds >= o.rounds)
                        break;
                if (o.seconds && chaos_now_ms() - start >= o.seconds * 1000)
                        break;
                round_run(&o, &d, b, &rng, n, &tot);
                if (tot.setup_failures > 10)
                        break;
        }
        tot.fds_end = daemon_fds_settled(&d, tot.fds_start);
        tot.rss_end = daemon_rss_kb(&d);
        report(&o, &tot, chaos_now_ms() - start);
        daemon_stop(&d);
        nftw(d.dir, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        return holds(&tot) && !tot.setup_failures ? 0 : 1;
}
