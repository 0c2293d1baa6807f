/*
 * test-bench-smoke.c — the side-by-side benchmarks (bench/cmp-*.c, run by
 * bench/suite.sh) must never rot: each program runs here in its --quick form
 * (a second or three each, one run) and must exit 0 and print sane CSV —
 * the header, at least one measurement, nine fields a line, positive
 * medians with min <= median <= max, and no mechanism reported FAILED.
 * cmp-report then turns the CSV into a Markdown report, and
 * bench/suite.sh --report-only draws the report and the plots from results.
 * bench-hosts --only prints the rows of what it measured and no others.
 *
 * Each program starts its own ipcfd (and dbus-daemon) on a private runtime
 * directory of its own, which it removes at exit. Leak checking is off for
 * the programs (the libraries they measure keep global state).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/test.h"

/* Run $IPCF_BUILD/bench/<prog> with args (NULL-terminated); its stdout in
 * *ret_out (malloc'ed, NUL-terminated). Returns the exit status (128+sig
 * if killed; the child is killed after timeout_s). */
static int run(const char *prog, const char *const *args, char **ret_out, unsigned timeout_s) {
        char rel[64];
        snprintf(rel, sizeof(rel), "bench/%s", prog);
        char *path = test_build_path(rel);
        int p[2];
        CHECK(pipe(p) == 0);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                const char *argv[16] = { path };
                int n = 1;
                for (; args[n - 1] && n < 15; n++)
                        argv[n] = args[n - 1];
                argv[n] = NULL;
                dup2(p[1], 1);
                close(p[0]);
                close(p[1]);
                int devnull = open("/dev/null", O_WRONLY);
                if (devnull >= 0)
                        dup2(devnull, 2); /* the progress line */
                setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
                alarm(timeout_s);
                execv(path, (char *const *)argv);
                _exit(127);
        }
        close(p[1]);
        size_t cap = 1 << 16, len = 0;
        char *out = malloc(cap);
        for (;;) {
                if (len + 4096 > cap)
                        out = realloc(out, cap *= 2);
                ssize_t n = read(p[0], out + len, cap - len - 1);
                if (n <= 0)
                        break;
                len += (size_t)n;
        }
        out[len] = 0;
        close(p[0]);
        int st = test_wait(pid, (int)timeout_s * 1000 + 5000);
        free(path);
        *ret_out = out;
        return st;
}

/* Check the CSV text; returns how many measurements it holds. */
static unsigned check_csv(const char *prog, const char *csv) {
        CHECK(!strncmp(csv, "mechanism,metric,size,concurrency,pinned,median,min,max,unit\n", 61));
        unsigned n = 0;
        char *copy = strdup(csv), *save = NULL;
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (!strncmp(line, "mechanism,", 10))
                        continue;
                if (line[0] == '#') {
                        if (strstr(line, "FAILED"))
                                test_fail(__FILE__, __LINE__, "%s: %s", prog, line);
                        continue;
                }
                char mech[64], metric[32], pin[8], unit[8];
                size_t size;
                unsigned conc;
                double med, lo, hi;
                int f = sscanf(line, "%63[^,],%31[^,],%zu,%u,%7[^,],%lf,%lf,%lf,%7s", mech, metric,
                               &size, &conc, pin, &med, &lo, &hi, unit);
                if (f != 9)
                        test_fail(__FILE__, __LINE__, "%s: bad line: %s", prog, line);
                if (!(med > 0 && lo > 0 && lo <= med && med <= hi) || conc < 1)
                        test_fail(__FILE__, __LINE__, "%s: insane figure: %s", prog, line);
                n++;
        }
        free(copy);
        return n;
}

/* Run prog --quick and check its CSV. A quick run measures each figure
 * once on a shared machine, so one transient failure is retried once. */
static void smoke(const char *prog, unsigned want_at_least) {
        static const char *const args[] = { "--quick", NULL };
        char *out = NULL;
        int st = run(prog, args, &out, 60);
        if (st != 0 || strstr(out, "FAILED")) {
                fprintf(stderr, "%s: first quick run failed (%d), retrying:\n%s", prog, st, out);
                free(out);
                st = run(prog, args, &out, 60);
        }
        if (st != 0)
                test_fail(__FILE__, __LINE__, "%s --quick exited %d; output:\n%s", prog, st, out);
        unsigned n = check_csv(prog, out);
        if (n < want_at_least)
                test_fail(__FILE__, __LINE__, "%s: %u measurements, want >= %u", prog, n,
                          want_at_least);
        free(out);
}

/* 15 mechanisms x 2 placements x 5 metrics */
TEST_TIMEOUT(cmp_lat_quick_gives_sane_csv, 90) { smoke("cmp-lat", 150); }

/* 11 message mechanisms x 2 sizes x 2 placements x 3 metrics, less n/a */
TEST_TIMEOUT(cmp_thr_quick_gives_sane_csv, 90) { smoke("cmp-thr", 100); }

/* 4 calls x 2 sizes x 2 placements x 5 metrics */
TEST_TIMEOUT(cmp_rpc_quick_gives_sane_csv, 90) { smoke("cmp-rpc", 80); }

TEST_TIMEOUT(cmp_scale_quick_gives_sane_csv, 90) { smoke("cmp-scale", 40); }

/* The rows of bench-hosts' table (after its header rows), one string of
 * "NAME=RATIO;" per row, the ratio cell as printed. */
static void table_rows(const char *out, char *ret, size_t size) {
        size_t len = 0;
        ret[0] = 0;
        for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                char name[32], value[96], ratio[96];
                if (strncmp(l, "| ", 2) != 0 || !strncmp(l, "| measurement", 13))
                        continue;
                ratio[0] = 0;
                if (sscanf(l, "| %31[^ |] | %95[^|]| %95[^|]|", name, value, ratio) < 2)
                        test_fail(__FILE__, __LINE__, "bench-hosts: bad row: %.*s", (int)strcspn(l, "\n"), l);
                size_t r = strlen(ratio);
                while (r && ratio[r - 1] == ' ')
                        ratio[--r] = 0;
                int n = snprintf(ret + len, size - len, "%s=%s;", name, ratio);
                len += n > 0 ? (size_t)n : 0;
        }
}

/* bench-hosts --only: the rows of what it measured, none of the others
 * (they printed as "0.000 Gbit/s" with a ratio "-nanx raw UDP"), and a
 * ratio only where both of its measurements ran; an unknown name is a
 * usage error. Two daemons on 127.0.0.1 (bench-hosts starts them). */
TEST_TIMEOUT(bench_hosts_only_prints_what_it_measured, 120) {
        static const char *const rtt[] = { "--quick",   "--link", "loopback", "--rtt", "50", "--allocs",
                                           "10",        "--only", "tcp-rtt,ipcf-rtt,alloc", NULL };
        char *out = NULL, rows[512];
        int st = run("bench-hosts", rtt, &out, 90);
        if (st != 0)
                test_fail(__FILE__, __LINE__, "bench-hosts exited %d:\n%s", st, out);
        CHECK(strstr(out, "nan") == NULL && strstr(out, "inf") == NULL && strstr(out, "Gbit/s") == NULL);
        table_rows(out, rows, sizeof(rows));
        /* ipcf-rtt's one ratio, to TCP (not to the relay floor: not run) */
        double x = 0;
        int end = 0;
        if (sscanf(rows, "tcp-rtt=;ipcf-rtt=%lfx TCP p50;alloc=;%n", &x, &end) != 1 || end != (int)strlen(rows) ||
            !(x > 0))
                test_fail(__FILE__, __LINE__, "rows %s\n%s", rows, out);
        free(out);
        /* the lossy run alone: its row without a ratio (no loss-free run) */
        static const char *const lossy[] = { "--quick", "--link", "loopback", "--seconds", "0.3",
                                             "--only",  "udp-goodput,ipcf-lossy", NULL };
        st = run("bench-hosts", lossy, &out, 90);
        if (st != 0)
                test_fail(__FILE__, __LINE__, "bench-hosts exited %d:\n%s", st, out);
        CHECK(strstr(out, "nan") == NULL && strstr(out, "inf") == NULL);
        table_rows(out, rows, sizeof(rows));
        if (strcmp(rows, "udp-goodput=;ipcf-lossy=;") != 0)
                test_fail(__FILE__, __LINE__, "rows %s\n%s", rows, out);
        free(out);
        static const char *const bad[] = { "--only", "tcp-rtt,ipcf", NULL };
        CHECK_EQ(run("bench-hosts", bad, &out, 10), 2);
        CHECK(out[0] == 0);
        free(out);
}

/* The report of a small CSV has its sections and the ratio against ipcf. */
TEST(cmp_report_makes_the_markdown) {
        char path[] = "/tmp/ipcf-smoke-csv.XXXXXX";
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        static const char csv[] =
                "mechanism,metric,size,concurrency,pinned,median,min,max,unit\n"
                "ipcf,rtt_p50,64,1,yes,0.5,0.4,0.6,us\n"
                "pipe,rtt_p50,64,1,yes,50,45,55,us\n"
                "ipcf,thr_msgs,64,1,yes,1e6,1e6,1e6,1/s\n"
                "pipe,thr_msgs,64,1,yes,2e6,2e6,2e6,1/s\n";
        CHECK(write(fd, csv, sizeof(csv) - 1) == (ssize_t)(sizeof(csv) - 1));
        close(fd);
        const char *const args[] = { path, NULL };
        char *out = NULL;
        CHECK_EQ(run("cmp-report", args, &out, 20), 0);
        unlink(path);
        CHECK(strstr(out, "## Targets"));
        CHECK(strstr(out, "| pipe | 50.0 (45.0–55.0) | 100×"));
        /* the pipe's 2 M msgs/s beat ipcf's 1 M: the report must say so */
        CHECK(strstr(out, "## Where ipcf loses"));
        CHECK(strstr(out, "- pipe, thr_msgs, 64 B"));
        free(out);
}

/* cmp-scale's readiness-set rows (ipcf-set) are in the flows table, with
 * their ratio against the ipcf epoll server, and issue 14's targets are
 * computed against the peer of the same run (the set ÷ Unix sockets). */
TEST(cmp_report_shows_the_readiness_set_and_issue_14_targets) {
        char path[] = "/tmp/ipcf-smoke-csv.XXXXXX";
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        static const char csv[] =
                "mechanism,metric,size,concurrency,pinned,median,min,max,unit\n"
                "ipcf,flows_rate,64,1000,yes,400000,400000,400000,1/s\n"
                "unix-stream,flows_rate,64,1000,yes,500000,500000,500000,1/s\n"
                "ipcf-set,flows_rate,64,1000,yes,3000000,3000000,3000000,1/s\n"
                "ipcf-set,flows_p50,64,1000,yes,330,330,330,us\n"
                "ipcf,rtt_p50,64,1,yes,1,1,1,us\n"
                "ipcf-nospin,rtt_p50,64,1,yes,22,22,22,us\n"
                "unix-stream,rtt_p50,64,1,yes,20,20,20,us\n";
        CHECK(write(fd, csv, sizeof(csv) - 1) == (ssize_t)(sizeof(csv) - 1));
        close(fd);
        const char *const args[] = { path, NULL };
        char *out = NULL;
        CHECK_EQ(run("cmp-report", args, &out, 20), 0);
        unlink(path);
        CHECK(strstr(out, "| ipcf-set | msgs/s | — | — | — | 3.00 M ×7.50× |"));
        CHECK(strstr(out, "| ipcf-set | round median µs | — | — | — | 330 |"));
        CHECK(strstr(out, "readiness-set server ÷ Unix sockets (issue 14) | ≥ 4× | 6 × (6–6) | met |"));
        CHECK(strstr(out, "sleep-only round trip ÷ a Unix stream socket (issue 14) | ≤ 1× | 1.1 × "
                          "(1.1–1.1) | **missed** |"));
        /* the clients table of this CSV has no figure: no rows but ipcf's */
        CHECK(!strstr(out, "| unix-stream-epoll |"));
        free(out);
}

/* suite.sh --report-only: the report and (with gnuplot) the plots from a
 * results folder. Run from the source tree (make check); skipped elsewhere. */
TEST(suite_report_only_draws_report_and_plots) {
        if (access("bench/suite.sh", X_OK) != 0) {
                fprintf(stderr, "no bench/suite.sh here: skipped\n");
                return;
        }
        char dir[] = "/tmp/ipcf-smoke-suite.XXXXXX";
        CHECK(mkdtemp(dir));
        char path[128], cmd[512];
        snprintf(path, sizeof(path), "%s/latest.csv", dir);
        FILE *f = fopen(path, "w");
        CHECK(f);
        fputs("mechanism,metric,size,concurrency,pinned,median,min,max,unit\n"
              "ipcf,rtt_p50,64,1,yes,0.5,0.4,0.6,us\n"
              "ipcf,thr_msgs,64,1,yes,1e6,1e6,1e6,1/s\n"
              "ipcf,thr_bytes,64,1,yes,6.4e7,6.4e7,6.4e7,B/s\n"
              "ipcf,thr_msgs,65536,1,yes,1e5,1e5,1e5,1/s\n"
              "ipcf,thr_bytes,65536,1,yes,6.5e9,6.5e9,6.5e9,B/s\n"
              "ipcf,flows_rate,64,1,yes,1e5,1e5,1e5,1/s\n"
              "ipcf,flows_rate,64,10,yes,2e5,2e5,2e5,1/s\n",
              f);
        fclose(f);
        const char *build = getenv("IPCF_BUILD") ? getenv("IPCF_BUILD") : "build";
        snprintf(cmd, sizeof(cmd), "bench/suite.sh %s --report-only --out=%s >/dev/null 2>&1",
                 build, dir);
        CHECK_EQ(system(cmd), 0);
        snprintf(path, sizeof(path), "%s/latest.md", dir);
        f = fopen(path, "r");
        CHECK(f);
        char buf[4096] = { 0 };
        CHECK(fread(buf, 1, sizeof(buf) - 1, f) > 0);
        fclose(f);
        CHECK(strstr(buf, "## Targets"));
        if (system("command -v gnuplot >/dev/null 2>&1") == 0) {
                struct stat st;
                snprintf(path, sizeof(path), "%s/throughput.png", dir);
                CHECK(stat(path, &st) == 0 && st.st_size > 1000);
        }
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        CHECK_EQ(system(cmd), 0);
}
