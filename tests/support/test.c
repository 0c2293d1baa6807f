/*
 * test.c — the harness behind test.h: registration and the forked runner
 * with a time bound per case (main). The helpers a case uses (failing, time,
 * the real daemon, child processes) are in testutil.c, which programs with a
 * main of their own (benchmarks) link without this file.
 */
#include "support/test.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TEST_MAX 256

static struct {
        const char *name;
        test_fn fn;
        unsigned timeout_s;
} tests[TEST_MAX];
static unsigned n_tests;

void test_register(const char *name, test_fn fn, unsigned timeout_s) {
        if (n_tests >= TEST_MAX) {
                fprintf(stderr, "too many tests\n");
                exit(2);
        }
        tests[n_tests].name = name;
        tests[n_tests].fn = fn;
        tests[n_tests].timeout_s = timeout_s;
        n_tests++;
}



/* Run one case in its own process group so a timeout kills everything it
 * started, with a scratch directory of its own (TEST_SCRATCH) that is removed
 * afterwards whatever happened: daemons' runtime directories go there. */
static int run_case(unsigned i) {
        uint64_t t0 = test_now_ns();
        char scratch[] = "/tmp/ipcf-case.XXXXXX";
        if (!mkdtemp(scratch)) {
                perror("mkdtemp");
                return 1;
        }
        chmod(scratch, 0755); /* cases that run a child as another user reach it */
        setenv("TEST_SCRATCH", scratch, 1);
        pid_t pid = fork();
        if (pid < 0) {
                perror("fork");
                return 1;
        }
        if (pid == 0) {
                setpgid(0, 0);
                alarm(tests[i].timeout_s);
                tests[i].fn();
                fflush(stdout);
                _exit(0);
        }
        setpgid(pid, pid);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        kill(-pid, SIGKILL); /* leftovers of the case: daemons, children */
        nftw(scratch, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        uint64_t ms = (test_now_ns() - t0) / 1000000u;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                printf("ok   %-40s %6llu ms\n", tests[i].name, (unsigned long long)ms);
                fflush(stdout);
                return 0;
        }
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
                printf("FAIL %-40s timed out after %u s\n", tests[i].name, tests[i].timeout_s);
        else if (WIFSIGNALED(status))
                printf("FAIL %-40s killed by signal %d\n", tests[i].name, WTERMSIG(status));
        else
                printf("FAIL %-40s exit %d\n", tests[i].name, WEXITSTATUS(status));
        fflush(stdout);
        return 1;
}

/* TEST_EXCLUDE: a ':'-separated list of substrings; a case whose name
 * contains one is not run (run-valgrind.sh leaves out the cases that cannot
 * hold under Valgrind: see there). */
static bool excluded(const char *name) {
        const char *list = getenv("TEST_EXCLUDE");
        while (list && *list) {
                const char *end = strchrnul(list, ':');
                size_t n = (size_t)(end - list);
                if (n > 0 && memmem(name, strlen(name), list, n))
                        return true;
                list = *end ? end + 1 : end;
        }
        return false;
}

int main(int argc, char **argv) {
        const char *filter = getenv("TEST_FILTER");
        unsigned passed = 0, failed = 0;

        signal(SIGPIPE, SIG_IGN);
        setvbuf(stdout, NULL, _IOLBF, 0);
        for (unsigned i = 0; i < n_tests; i++) {
                if (filter && *filter && !strstr(tests[i].name, filter))
                        continue;
                if (excluded(tests[i].name))
                        continue;
                if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
                        continue;
                if (run_case(i))
                        failed++;
                else
                        passed++;
        }
        printf("%s: %u passed, %u failed\n", argv[0], passed, failed);
        return failed ? 1 : 0;
}
