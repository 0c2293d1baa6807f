/*
 * test-completion.c — bash completion for ipcf (dist/bash-completion/ipcf),
 * run in a real bash: the script is sourced, COMP_WORDS/COMP_CWORD set as
 * bash sets them, _ipcf called, COMPREPLY read. It must offer exactly the
 * commands of `ipcf help`, exactly the long options each `ipcf COMMAND
 * --help` shows (per subcommand for shm, mbox, mcast, dgram), the values of
 * --capacity/--full/--slow/--format, and the names a real daemon knows — without
 * ever starting a daemon. Installed, bash-completion's loader finds it.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/shell.h"
#include "support/test.h"

#ifndef TEST_SRCDIR
#error "built by the Makefile, which defines TEST_SRCDIR, TEST_CC and TEST_SANFLAGS"
#endif

/* The completion of the words (one string, blank-separated; a trailing
 * blank completes an empty word), sorted, one per line. */
static char *complete_words(const char *words) {
        char *bin = test_built("bin");
        char *out = TEST_SH_OK("PATH='%s':\"$PATH\" bash -c '"
                               "source \"%s/dist/bash-completion/ipcf\" || exit 1; "
                               "read -r -a COMP_WORDS <<< \"%s\"; "
                               "case \"%s\" in *\" \") COMP_WORDS+=(\"\");; esac; "
                               "COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _ipcf; "
                               "printf \"%%s\\n\" \"${COMPREPLY[@]}\"' | sed '/^$/d' | sort",
                               bin, TEST_SRCDIR, words, words);
        free(bin);
        return out;
}

/* A sorted list from a shell pipeline. */
static char *list(const char *cmd) {
        char *full = NULL;
        if (asprintf(&full, "{ %s; } | sed '/^$/d' | sort -u", cmd) < 0)
                abort();
        char *out = TEST_SH_OK("%s", full);
        free(full);
        return out;
}

static void check_same(const char *what, const char *got, const char *want) {
        if (strcmp(got, want) != 0)
                test_fail(__FILE__, __LINE__, "%s: completion offers\n%s--- but ipcf's help shows\n%s", what,
                          got, want);
}

TEST(commands_are_those_of_ipcf_help) {
        char *ipcf = test_built("bin/ipcf"), *cmd = NULL;
        if (asprintf(&cmd, "'%s' help | awk '/^commands:/{f=1;next} f && /^  [a-z]/{print $1}'; "
                           "echo --help; echo --version", ipcf) < 0)
                abort();
        char *want = list(cmd), *got = complete_words("ipcf ");
        check_same("ipcf <TAB>", got, want);
        free(got);
        got = complete_words("ipcf m");
        CHECK(strcmp(got, "mbox\nmcast\nmonitor\n") == 0);
        free(got);
        free(want);
        free(cmd);
        free(ipcf);
}

/* For each command: the long options of its --help, and for those with
 * subcommands, the subcommands and then each one's options (from its lines
 * of the help). */
TEST_TIMEOUT(options_and_subcommands_are_those_of_each_help, 120) {
        char *ipcf = test_built("bin/ipcf");
        char *cmds = TEST_SH_OK("'%s' help | awk '/^commands:/{f=1;next} f && /^  [a-z]/{print $1}'", ipcf);
        unsigned n = 0;
        for (char *s1 = NULL, *c = strtok_r(cmds, "\n", &s1); c; c = strtok_r(NULL, "\n", &s1), n++) {
                char *cmd = NULL, *words = NULL;
                /* Subcommands: "  sub ..." lines (shm, mbox, mcast) or
                 * "ipcf dgram sub ..." usage lines. */
                if (asprintf(&cmd, "'%s' %s --help | sed -n 's/^  \\([a-z][a-z]*\\)\\( .*\\)*$/\\1/p; "
                                   "s/^ *\\(usage: \\)*ipcf %s \\([a-z][a-z]*\\) .*/\\2/p'",
                             ipcf, c, c) < 0)
                        abort();
                char *subs = list(cmd);
                free(cmd);
                if (!subs[0]) {
                        /* Options: of the usage line and the option lines, not the prose. */
                        if (asprintf(&cmd, "'%s' %s --help | grep -E '^(usage:| +-)' | grep -o -- '--[a-z][a-z-]*'; "
                                           "echo --help", ipcf, c) < 0 ||
                            asprintf(&words, "ipcf %s x --", c) < 0)
                                abort();
                        char *want = list(cmd), *got = complete_words(words);
                        /* Offered "--opt=" stands for --opt. */
                        char *got_names = TEST_SH_OK("printf '%%s' '%s' | sed 's/=$//' | sort -u", got);
                        check_same(words, got_names, want);
                        free(want);
                        free(got);
                        free(got_names);
                        free(cmd);
                        free(words);
                        free(subs);
                        continue;
                }
                if (asprintf(&words, "ipcf %s ", c) < 0)
                        abort();
                char *got = complete_words(words);
                char *want = TEST_SH_OK("printf '%%s--help\\n' '%s' | sort", subs);
                check_same(words, got, want);
                free(got);
                free(want);
                free(words);
                for (char *s2 = NULL, *sub = strtok_r(subs, "\n", &s2); sub; sub = strtok_r(NULL, "\n", &s2)) {
                        /* The sub's lines: from its line to the next sub's. */
                        if (asprintf(&cmd, "'%s' %s --help | awk '/^  [a-z]/{f = $1 == \"%s\"} "
                                           "/ipcf %s [a-z]+ /{f = $0 ~ /ipcf %s %s /} f' | "
                                           "grep -o -- '--[a-z][a-z-]*'; echo --help",
                                     ipcf, c, sub, c, c, sub) < 0 ||
                            asprintf(&words, "ipcf %s %s x --", c, sub) < 0)
                                abort();
                        want = list(cmd);
                        got = complete_words(words);
                        check_same(words, got, want);
                        free(want);
                        free(got);
                        free(cmd);
                        free(words);
                }
                free(subs);
        }
        CHECK(n >= 12);
        free(cmds);
        free(ipcf);
}

TEST(option_values) {
        char *got = complete_words("ipcf cat x --capacity=");
        CHECK(strcmp(got, "--capacity=bounded\n--capacity=unbounded\n--capacity=zero\n") == 0);
        free(got);
        got = complete_words("ipcf cat x --capacity = u"); /* as bash splits it at '=' */
        CHECK(strcmp(got, "unbounded\n") == 0);
        free(got);
        got = complete_words("ipcf ping x --full = ");
        CHECK(strcmp(got, "block\ncache\nfail\n") == 0);
        free(got);
        got = complete_words("ipcf mcast create g --slow ");
        CHECK(strcmp(got, "block\ndrop\nremove\n") == 0);
        free(got);
        got = complete_words("ipcf cat x --format=l");
        CHECK(strcmp(got, "--format=len\n--format=line\n") == 0);
        free(got);
        got = complete_words("ipcf listen x -f ");
        CHECK(strcmp(got, "hex\nlen\nline\nraw\n") == 0);
        free(got);
}

/* Names come from the facility of IPCF_RUNTIME_DIR. */
TEST(names_come_from_the_daemon) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_register("printer.left", NULL));
        CHECK_OK(ipcf_register("printer.right", NULL));
        CHECK_OK(ipcf_register("scanner", NULL));
        char *got = complete_words("ipcf cat pr");
        CHECK(strcmp(got, "printer.left\nprinter.right\n") == 0);
        free(got);
        got = complete_words("ipcf ping ");
        CHECK(strcmp(got, "printer.left\nprinter.right\nscanner\n") == 0);
        free(got);
        test_daemon_stop(&d);
}

/* A name is data: another user of a shared daemon may register
 * "$(command)" or "`command`" (printable, no spaces: a valid name), and
 * compgen -W expands its word list — pressing TAB ran the command. Names
 * are offered quoted for the shell (printf %q), so that the command line
 * holds the name, not what a shell makes of it. */
TEST(names_are_never_expanded_nor_run) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        char dollar[128], tick[128];
        snprintf(dollar, sizeof(dollar), "$(touch${IFS}%s)", test_scratch("ran-dollar"));
        snprintf(tick, sizeof(tick), "`touch${IFS}%s`", test_scratch("ran-tick"));
        static const char *const plain[] = { "*", "a;b", "x|y", "printer.left" };
        CHECK_OK(ipcf_register(dollar, NULL));
        CHECK_OK(ipcf_register(tick, NULL));
        for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
                CHECK_OK(ipcf_register(plain[i], NULL));
        char *got = complete_words("ipcf cat ");
        char *ran = TEST_SH_OK("cd \"$TEST_SCRATCH\" && ls");
        if (strstr(ran, "ran-"))
                test_fail(__FILE__, __LINE__, "completing ran a name as a command: %s", ran);
        /* Each offered word, read back by the shell, is one of the names. */
        char *want = TEST_SH_OK("bash -c 'for n in \"$@\"; do printf \"%%q\\n\" \"$n\"; done' - '%s' '%s' '*' 'a;b' "
                                "'x|y' printer.left | sort",
                                dollar, tick);
        check_same("ipcf cat <TAB> with names that are shell syntax", got, want);
        free(got);
        got = complete_words("ipcf cat pr");
        CHECK(strcmp(got, "printer.left\n") == 0);
        free(got);
        free(ran);
        free(want);
        test_daemon_stop(&d);
}

/* Completing never starts a daemon, even where autostart is allowed. */
TEST(completion_never_starts_a_daemon) {
        const char *dir = test_scratch("run");
        CHECK(mkdir(dir, 0700) == 0);
        setenv("IPCF_RUNTIME_DIR", dir, 1);
        unsetenv("IPCF_NO_AUTOSTART");
        char *daemon = test_built("bin/ipcfd");
        setenv("IPCF_DAEMON", daemon, 1);
        char *got = complete_words("ipcf cat ");
        CHECK(got[0] == 0);
        char *left = TEST_SH_OK("ls -A '%s'", dir);
        if (left[0])
                test_fail(__FILE__, __LINE__, "a daemon was started: %s", left);
        free(got);
        free(left);
        free(daemon);
}

/* Installed, bash-completion's on-demand loader finds it. */
TEST_TIMEOUT(installed_completion_is_loaded_by_bash_completion, 300) {
        const char *root = TEST_INSTALL();
        char *out = TEST_SH_OK("XDG_DATA_DIRS='%s/usr/local/share' bash -c '"
                               ". /usr/share/bash-completion/bash_completion && "
                               "__load_completion ipcf && complete -p ipcf'",
                               root);
        CHECK(strcmp(out, "complete -F _ipcf ipcf\n") == 0);
        free(out);
}
