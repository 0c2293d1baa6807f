/*
 * test-cli-consistency.c — every `ipcf` subcommand obeys the same command
 * line rules (src/cli/args.c): an unknown option is a usage error (exit 2,
 * one line, before any daemon is contacted) wherever it stands; options may
 * follow the positional arguments; "--" ends the options; every listing
 * takes --json and prints valid JSON (checked by parsing it with python3);
 * `ls NAME...` filters; listings show program names; docs/CLI.md documents
 * every command, subcommand and long option.
 *
 * The walk over the subcommands comes from `ipcf help` and each command's
 * --help, so a subcommand added later is walked too; the listings found by
 * their help's "[--json]" must be exactly those this file knows how to run.
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

/* got must be want; shows both otherwise. */
#define CHECK_STR(got, want)                                                                  \
        do {                                                                                  \
                if (strcmp((got), (want)) != 0)                                               \
                        test_fail(__FILE__, __LINE__, "got:\n%s--- want:\n%s", (got), (want)); \
        } while (0)

/* Every "CMD" and "CMD SUB" of the tool, one per line (as the completion
 * test finds them: "  sub ..." help lines, or "ipcf CMD sub ..." usage lines). */
static char *every_command(void) {
        char *ipcf = test_built("bin/ipcf");
        char *out = TEST_SH_OK(
                "ipcf='%s'; for c in $(\"$ipcf\" help | awk '/^commands:/{f=1;next} f && /^  [a-z]/{print $1}'); do "
                "subs=$(\"$ipcf\" $c --help | sed -n 's/^  \\([a-z][a-z]*\\)\\( .*\\)*$/\\1/p; "
                "s/^ *\\(usage: \\)*ipcf '\"$c\"' \\([a-z][a-z]*\\) .*/\\2/p' | sort -u); "
                "if [ -z \"$subs\" ]; then echo $c; else for s in $subs; do echo \"$c $s\"; done; fi; done",
                ipcf);
        free(ipcf);
        return out;
}

/* Run "ipcf WORDS"; its exit status, stderr in *ret_err. */
static int run_err(const char *words, char **ret_err) {
        char *ipcf = test_built("bin/ipcf");
        int st = test_sh(ret_err, 20, "'%s' %s </dev/null 2>&1 >/dev/null", ipcf, words);
        free(ipcf);
        return st;
}

/* One line, "ipcf: ...", saying what; exit 2. */
static void check_usage_error(const char *words, const char *what) {
        char *err = NULL;
        int st = run_err(words, &err);
        size_t lines = 0;
        for (const char *p = err; *p; p++)
                lines += *p == '\n';
        if (st != 2 || lines != 1 || strncmp(err, "ipcf: ", 6) != 0 || !strstr(err, what))
                test_fail(__FILE__, __LINE__, "'ipcf %s': exit %d, stderr:\n%s(want exit 2, one line with '%s')",
                          words, st, err, what);
        free(err);
}

/* No daemon runs and none may start: a usage error must come first. */
TEST_TIMEOUT(every_subcommand_refuses_unknown_options, 180) {
        const char *dir = test_scratch("run");
        CHECK(mkdir(dir, 0700) == 0);
        setenv("IPCF_RUNTIME_DIR", dir, 1);
        setenv("IPCF_NO_AUTOSTART", "1", 1);
        char *cmds = every_command();
        unsigned n = 0;
        for (char *sp = NULL, *c = strtok_r(cmds, "\n", &sp); c; c = strtok_r(NULL, "\n", &sp), n++) {
                char words[256];
                snprintf(words, sizeof(words), "%s --frobnicate", c);
                check_usage_error(words, "unknown option '--frobnicate'");
                snprintf(words, sizeof(words), "%s --frobnicate=3", c);
                check_usage_error(words, "unknown option '--frobnicate'");
                /* After a positional argument too, and as a short option. */
                snprintf(words, sizeof(words), "%s x -Z", c);
                check_usage_error(words, "unknown option '-Z'");
        }
        CHECK(n >= 30); /* 12 commands and the subcommands of shm, mbox, mcast, dgram, rpc */
        /* The cases of the issue, by name. */
        check_usage_error("mbox ls --json-x", "unknown option");
        check_usage_error("shm ls --frob", "unknown option '--frob'");
        check_usage_error("mcast ls -x", "unknown option '-x'");
        check_usage_error("watch --all -n1", "unknown option '--all'");
        check_usage_error("ls --json=yes", "option '--json' takes no value");
        check_usage_error("call svc -t", "option '-t' needs a value");
        check_usage_error("ping svc --count abc", "bad value for --count: 'abc'");
        check_usage_error("serve svc cat", "COMMAND expected after --");
        check_usage_error("mbox recv", "NAME missing");
        check_usage_error("ping x -c -5", "bad value for --count: '-5'");
        check_usage_error("mbox destroy a b", "unexpected argument 'b'");
        /* --help anywhere on the line: exit 0, usage on stdout. */
        char *out = TEST_SH_OK("'%s/bin/ipcf' mbox recv box -n 3 --help", test_build_abs());
        CHECK(strstr(out, "usage: ipcf mbox recv") != NULL);
        free(out);
        char *left = TEST_SH_OK("ls -A '%s'", dir);
        CHECK(left[0] == 0); /* nothing tried to start a daemon */
        free(left);
        free(cmds);
}

/* The words to run each listing with (objects made by the case below), and
 * the help's "[--json]" must name exactly these. */
static const struct listing {
        const char *cmd, *args;
        bool lines; /* JSON lines (a stream), not one document */
        bool elsewhere; /* checked by its own test (a stream that needs traffic) */
} listings[] = {
        { "ls", "", false, false },
        { "ls", "'box.*' grp.json", false, false },
        { "hosts", "", false, false },
        { "shm ls", "", false, false },
        { "shm info", "shm.json", false, false },
        { "mbox ls", "", false, false },
        { "mcast ls", "grp.*", false, false },
        { "watch", "-n 2 box.json grp.json", true, false },
        { "monitor", "", true, true }, /* test-cli-monitor.c parses its lines */
};

static void check_json(const struct listing *l) {
        char *ipcf = test_built("bin/ipcf");
        const char *py = l->lines ? "import json,sys\nn=0\nfor line in sys.stdin: json.loads(line); n+=1\nassert n>0"
                                  : "import json,sys; json.load(sys.stdin)";
        /* --json before and after the arguments; the listing itself must succeed. */
        char *out = TEST_SH_OK("j=$('%s' %s --json %s) && printf '%%s' \"$j\" | python3 -c '%s' && "
                               "j=$('%s' %s %s --json) && printf '%%s' \"$j\" | python3 -c '%s' && echo ok",
                               ipcf, l->cmd, l->args, py, ipcf, l->cmd, l->args, py);
        CHECK(strcmp(out, "ok\n") == 0);
        free(out);
        free(ipcf);
}

TEST_TIMEOUT(every_listing_prints_valid_json, 120) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        /* Something of every kind, with names that need escaping too. */
        CHECK_OK(ipcf_register("svc.json", NULL));
        CHECK_OK(ipcf_register("quote\"back\\slash", NULL));
        CHECK_OK(ipcf_mbox_create("box.json", NULL));
        CHECK_OK(ipcf_mcast_create("grp.json", NULL));
        CHECK_OK(ipcf_group_create("shm.json", 4096, NULL));
        int member = CHECK_OK(ipcf_group_join("shm.json"));
        /* The listings by their help. */
        char *cmds = every_command();
        char *found = TEST_SH_OK("ipcf='%s/bin/ipcf'; while read -r c; do "
                                 "\"$ipcf\" $c --help | grep -q -- '--json' && echo \"$c\"; done <<'EOF'\n%sEOF\ntrue",
                                 test_build_abs(), cmds);
        char want[512] = "";
        for (size_t i = 0; i < sizeof(listings) / sizeof(listings[0]); i++)
                snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s\n", listings[i].cmd);
        char *sorted_found = TEST_SH_OK("printf '%%s' '%s' | sort -u", found);
        char *sorted_want = TEST_SH_OK("printf '%%s' '%s' | sort -u", want);
        if (strcmp(sorted_found, sorted_want) != 0)
                test_fail(__FILE__, __LINE__, "listings by their help:\n%s--- this test runs:\n%s", sorted_found,
                          sorted_want);
        for (size_t i = 0; i < sizeof(listings) / sizeof(listings[0]); i++)
                if (!listings[i].elsewhere)
                        check_json(&listings[i]);
        ipcf_dealloc(member, NULL);
        free(cmds);
        free(found);
        free(sorted_found);
        free(sorted_want);
        test_daemon_stop(&d);
}

/* `ipcf call NAME -t 2000`, `--` before a message that looks like an option,
 * options after the name in the receiving subcommands. */
TEST_TIMEOUT(options_after_arguments_and_double_dash, 60) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        const char *ipcf = test_build_abs();
        char *out = TEST_SH_OK("b='%s/bin/ipcf'; \"$b\" serve svc.echo -n 1 -- cat & "
                               "\"$b\" watch svc.echo -n 1 >/dev/null && "
                               "echo hello | \"$b\" call svc.echo -t 2000; wait",
                               ipcf);
        CHECK(strcmp(out, "hello\n") == 0);
        free(out);
        out = TEST_SH_OK("b='%s/bin/ipcf'; \"$b\" mbox create box.dd && "
                         "\"$b\" mbox send box.dd -- -x --y && "
                         "\"$b\" mbox recv box.dd -n 2 -v | cut -d' ' -f2",
                         ipcf);
        CHECK(strcmp(out, "-x\n--y\n") == 0);
        free(out);
        test_daemon_stop(&d);
}

/* `ls PATTERN...` keeps what matches; programs are shown (/proc/PID/comm). */
TEST_TIMEOUT(ls_filters_and_shows_programs, 60) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_register("printer.left", NULL));
        CHECK_OK(ipcf_register("printer.right", NULL));
        CHECK_OK(ipcf_register("scanner", NULL));
        CHECK_OK(ipcf_mbox_create("printer.queue", NULL));
        CHECK_OK(ipcf_mbox_create("other.queue", NULL));
        char comm[32];
        FILE *f = fopen("/proc/self/comm", "r");
        CHECK(f && fgets(comm, sizeof(comm), f));
        fclose(f);
        comm[strcspn(comm, "\n")] = 0;
        const char *ipcf = test_build_abs();
        char *out = TEST_SH_OK("'%s/bin/ipcf' ls 'printer.*' --json | python3 -c '"
                               "import json,sys; d=json.load(sys.stdin)\n"
                               "print(sorted(n[\"name\"] for n in d[\"names\"]))\n"
                               "print(set(n[\"program\"] for n in d[\"names\"]))\n"
                               "print(sorted(m[\"name\"] for m in d[\"models\"]))'",
                               ipcf);
        char want[256];
        snprintf(want, sizeof(want),
                 "['printer.left', 'printer.right']\n{'%s'}\n['printer.queue']\n", comm);
        CHECK_STR(out, want);
        free(out);
        out = TEST_SH_OK("'%s/bin/ipcf' ls scanner", ipcf);
        CHECK(strstr(out, "PROGRAM") && strstr(out, comm) && strstr(out, "scanner") && !strstr(out, "printer"));
        free(out);
        out = TEST_SH_OK("'%s/bin/ipcf' mbox ls 'other.*'", ipcf);
        CHECK(strstr(out, "other.queue") && !strstr(out, "printer.queue"));
        free(out);
        out = TEST_SH_OK("'%s/bin/ipcf' mcast ls", ipcf);
        CHECK_STR(out, "no multicast groups\n");
        free(out);
        test_daemon_stop(&d);
}

/* docs/CLI.md documents every command and subcommand (as every_command()
 * finds them) and every long option each --help shows: a command added to
 * the tool without its documentation fails here. */
TEST_TIMEOUT(cli_md_documents_every_command_and_option, 60) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/docs/CLI.md", TEST_SRCDIR);
        char *doc = TEST_SH_OK("cat '%s'", path);
        char *cmds = every_command();
        char *ipcf = test_built("bin/ipcf");
        unsigned n = 0;
        for (char *s1 = NULL, *c = strtok_r(cmds, "\n", &s1); c; c = strtok_r(NULL, "\n", &s1), n++) {
                char head[96];
                snprintf(head, sizeof(head), "ipcf %s", c);
                if (!strstr(doc, head))
                        test_fail(__FILE__, __LINE__, "docs/CLI.md never says '%s'", head);
                char top[32];
                snprintf(top, sizeof(top), "%.*s", (int)strcspn(c, " "), c);
                char *opts = TEST_SH_OK("'%s' %s --help | grep -o -- '--[a-z][a-z-]*' | sort -u", ipcf, top);
                for (char *s2 = NULL, *o = strtok_r(opts, "\n", &s2); o; o = strtok_r(NULL, "\n", &s2)) {
                        char word[64];
                        snprintf(word, sizeof(word), "%s", o);
                        /* "--opt" followed by what ends a word in the text. */
                        bool found = false;
                        for (const char *p = doc; (p = strstr(p, word)) != NULL; p++) {
                                char next = p[strlen(word)];
                                if (!(next >= 'a' && next <= 'z') && next != '-') {
                                        found = true;
                                        break;
                                }
                        }
                        if (strcmp(o, "--help") != 0 && !found)
                                test_fail(__FILE__, __LINE__, "docs/CLI.md lacks '%s' of 'ipcf %s'", o, top);
                }
                free(opts);
        }
        CHECK(n >= 20);
        free(ipcf);
        free(cmds);
        free(doc);
}
