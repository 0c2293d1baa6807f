/*
 * test-man.c — the manual as a user reads it: every page of the build
 * (man/NAME.scd through scdoc; section 3 made from include/ipcf.h by
 * man/gen-man3.awk) rendered by man-db and groff with all warnings on must
 * print no warning and have a NAME line whatis can index; section 3 has a
 * page for every function of the header, which says how it fails (its
 * errors, or that it never fails) under a NAME line that is a summary;
 * ipcf(1) documents every command and long option `ipcf help` and
 * `ipcf COMMAND --help` show, ipcfd(8) every option of ipcfd,
 * ipcfd.conf(5) every section and key the parser knows
 * (common/confcheck.h) and no key that table lacks; the installed pages
 * are found by `man`.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/confcheck.h"
#include "support/shell.h"
#include "support/test.h"

#ifndef TEST_SRCDIR
#error "built by the Makefile, which defines TEST_SRCDIR, TEST_CC and TEST_SANFLAGS"
#endif

/* How a page is read here: man-db on a file, groff's warnings on, 80 columns. */
#define RENDER "LC_ALL=C.UTF-8 MANWIDTH=80 MAN_KEEP_FORMATTING= man --warnings -E UTF-8 -l"

/* Render path; fail if man prints anything on stderr (kept in the scratch
 * file err) or fails. Returns the text of the page. */
static char *render_to(const char *path, const char *err) {
        char *text = NULL;
        int st = test_sh(&text, 60, RENDER " '%s' 2>'%s' | col -b", path, err);
        char *warn = TEST_SH_OK("cat '%s'", err);
        if (st != 0 || warn[0])
                test_fail(__FILE__, __LINE__, "%s: exit %d, warnings:\n%s", path, st, warn);
        free(warn);
        return text;
}

static char *render(const char *path) { return render_to(path, test_scratch("render.err")); }

/* The pages of list (one path a line) whose index is odd (odd) or even: each
 * renders without warnings and has a NAME section. Returns how many. */
static unsigned check_pages(const char *list, bool odd) {
        char *copy = strdup(list);
        const char *err = test_scratch(odd ? "render-odd.err" : "render-even.err");
        unsigned i = 0, n = 0;
        for (char *save = NULL, *p = strtok_r(copy, "\n", &save); p; p = strtok_r(NULL, "\n", &save), i++) {
                if ((i % 2 == 1) != odd)
                        continue;
                free(render_to(p, err));
                /* whatis/apropos: lexgrog reads the NAME section. */
                char *w = TEST_SH_OK("lexgrog '%s'", p);
                CHECK(strstr(w, " - ") != NULL);
                free(w);
                n++;
        }
        free(copy);
        return n;
}

static void check_odd_pages(void *list) { check_pages(list, true); }

/* Two processes share the pages (man and groff are busy: one per CPU). */
TEST_TIMEOUT(every_page_renders_without_warnings_and_has_a_name, 300) {
        char *dir = test_built("man");
        char *list = TEST_SH_OK("ls '%s'/*.[158] '%s'/man3/*.3", dir, dir);
        pid_t odd = test_fork(check_odd_pages, list);
        unsigned n_even = check_pages(list, false);
        CHECK_EQ(test_wait(odd, 300000), 0);
        unsigned n = 0;
        for (const char *c = list; *c; c++)
                n += *c == '\n';
        CHECK(n_even >= n / 2);
        CHECK(n >= 50);
        free(list);
        free(dir);
}

/* The check bites: a page with a roff mistake is reported. */
TEST(a_broken_page_is_reported) {
        const char *page = test_scratch("broken.1");
        FILE *f = fopen(page, "w");
        CHECK(f != NULL);
        fputs(".TH BROKEN 1\n.SH NAME\nbroken \\- a test\n.SH DESCRIPTION\n\\fQbad font\\fR and .\n.BOGUS\n", f);
        fclose(f);
        char *out = NULL;
        int st = test_sh(&out, 60, RENDER " '%s' 2>&1 >/dev/null", page);
        CHECK(st != 0 || out[0] != 0);
        free(out);
}

/* One page per IPCF_API function of the header, named after it, whose
 * synopsis declares it; and the overview libipcf(3). */
TEST(section_3_has_a_page_per_header_function) {
        char *dir = test_built("man/man3");
        char *missing = TEST_SH_OK(
                "sed -n 's/^IPCF_API[^(]*[ *]\\(ipcf_[a-z0-9_]*\\)(.*/\\1/p' '%s/include/ipcf.h' | sort -u >'%s' && "
                "ls '%s' | sed -n 's/\\.3$//p' | grep -v '^libipcf$' | sort -u >'%s' && "
                "diff '%s' '%s' || true",
                TEST_SRCDIR, test_scratch("header"), dir, test_scratch("pages"), test_scratch("header"),
                test_scratch("pages"));
        if (missing[0])
                test_fail(__FILE__, __LINE__, "header functions (<) and pages (>) differ:\n%s", missing);
        char page[PATH_MAX + 32];
        snprintf(page, sizeof(page), "%s/ipcf_alloc.3", dir);
        char *text = render(page);
        CHECK(strstr(text, "int ipcf_alloc(const char *name") != NULL);
        CHECK(strstr(text, "-ECONNREFUSED") != NULL);     /* its errors, from the comment */
        CHECK(strstr(text, "typedef struct ipcf_qos") != NULL); /* the types it names */
        snprintf(page, sizeof(page), "%s/libipcf.3", dir);
        free(text);
        text = render(page);
        CHECK(strstr(text, "CONVENTIONS") != NULL);
        CHECK(strstr(text, "ipcf_version(3)") != NULL);
        free(text);
        free(missing);
        free(dir);
}

/* Every function's page (its comment in the header) says how it fails:
 * "Errors:" with the list, or that it never fails; and its NAME line is a
 * summary, not a fragment cut inside parentheses. */
TEST(every_function_page_lists_its_errors) {
        char *dir = test_built("man/man3");
        char *bad = TEST_SH_OK(
                "cd '%s' && for p in ipcf_*.3; do "
                "  grep -qiE 'Errors|never fails|neither fails' \"$p\" || echo \"no errors: $p\"; "
                "  n=$(sed -n '/^\\.SH NAME/{n;p;q}' \"$p\"); "
                "  o=$(printf '%%s' \"$n\" | tr -cd '(' | wc -c); c=$(printf '%%s' \"$n\" | tr -cd ')' | wc -c); "
                "  [ \"$o\" -le \"$c\" ] || echo \"NAME cut inside parentheses: $p: $n\"; "
                "  case \"$n\" in *': '|*'\\- ') echo \"NAME empty or dangling: $p: $n\";; esac; "
                "done",
                dir);
        if (bad[0])
                test_fail(__FILE__, __LINE__, "\n%s", bad);
        free(bad);
        free(dir);
}

/* ipcf(1) names every command of `ipcf help`, every long option its --help
 * shows, and the subcommands of shm, mbox, mcast and dgram. */
TEST_TIMEOUT(ipcf_1_documents_every_command_and_option, 120) {
        char *page = test_built("man/ipcf.1"), *ipcf = test_built("bin/ipcf");
        char *text = render(page);
        char *cmds = TEST_SH_OK("'%s' help | awk '/^commands:/{f=1;next} f && /^  [a-z]/{print $1}'", ipcf);
        unsigned n = 0;
        for (char *s1 = NULL, *c = strtok_r(cmds, "\n", &s1); c; c = strtok_r(NULL, "\n", &s1), n++) {
                char head[64];
                snprintf(head, sizeof(head), "ipcf %s", c);
                if (!strstr(text, head))
                        test_fail(__FILE__, __LINE__, "ipcf(1) has no '%s'", head);
                char *words = TEST_SH_OK("'%s' %s --help | grep -o -- '--[a-z][a-z-]*' | sort -u; "
                                         "'%s' %s --help | sed -n 's/^  \\([a-z][a-z]*\\)\\( .*\\)*$/\\1/p; "
                                         "s/^ *\\(usage: \\)*ipcf %s \\([a-z][a-z]*\\) .*/\\2/p'",
                                         ipcf, c, ipcf, c, c);
                for (char *s2 = NULL, *w = strtok_r(words, "\n", &s2); w; w = strtok_r(NULL, "\n", &s2))
                        if (strcmp(w, "--help") != 0 && !strstr(text, w))
                                test_fail(__FILE__, __LINE__, "ipcf(1) lacks '%s' of 'ipcf %s'", w, c);
                free(words);
        }
        CHECK(n >= 12);
        free(cmds);
        free(text);
        free(page);
        free(ipcf);
}

TEST(ipcfd_8_documents_every_option) {
        char *page = test_built("man/ipcfd.8"), *ipcfd = test_built("bin/ipcfd");
        char *text = render(page);
        char *opts = TEST_SH_OK("'%s' --help | grep -o -- '--[a-z][a-z-]*' | sort -u", ipcfd);
        unsigned n = 0;
        for (char *s = NULL, *o = strtok_r(opts, "\n", &s); o; o = strtok_r(NULL, "\n", &s), n++)
                if (!strstr(text, o))
                        test_fail(__FILE__, __LINE__, "ipcfd(8) lacks %s", o);
        CHECK(n >= 4);
        free(opts);
        free(text);
        free(page);
        free(ipcfd);
}

/* Every key of every section, as bold text of the page's source (the
 * rendered text hyphenates long words). */
TEST(ipcfd_conf_5_documents_every_section_and_key) {
        char *text = TEST_SH_OK("cat '%s/man/ipcfd.conf.5.scd'", TEST_SRCDIR);
        for (size_t i = 0; i < conf_n_keys; i++) {
                char bold[64];
                snprintf(bold, sizeof(bold), "*%s*", conf_keys[i].key);
                if (!strstr(text, bold))
                        test_fail(__FILE__, __LINE__, "ipcfd.conf(5) lacks [%s] %s", conf_keys[i].section,
                                  conf_keys[i].key);
        }
        for (size_t i = 0; i < conf_n_sections; i++) {
                char head[64];
                snprintf(head, sizeof(head), "[%.*s", (int)strcspn(conf_sections[i], " "), conf_sections[i]);
                if (!strstr(text, head))
                        test_fail(__FILE__, __LINE__, "ipcfd.conf(5) lacks %s]", head);
        }
        free(text);
}

/* ... and the other way round: every key the page documents ("*key* = ..."
 * at the start of a line, under its "# [section" heading) is in the table,
 * so that a duplicate of it names the first and a misspelling of it is
 * named back (once [hosts] poll_us and [name] share were parsed but not in
 * the table). */
TEST(every_key_ipcfd_conf_5_documents_is_in_the_table) {
        char *text = TEST_SH_OK("cat '%s/man/ipcfd.conf.5.scd'", TEST_SRCDIR);
        char section[32] = "";
        unsigned n = 0;
        for (char *s = NULL, *l = strtok_r(text, "\n", &s); l; l = strtok_r(NULL, "\n", &s)) {
                if (!strncmp(l, "# [", 3)) {
                        size_t len = strcspn(l + 3, " ]");
                        snprintf(section, sizeof(section), "%.*s", (int)len, l + 3);
                        continue;
                }
                if (l[0] == '#')
                        section[0] = 0;
                size_t len = l[0] == '*' ? strspn(l + 1, "abcdefghijklmnopqrstuvwxyz_") : 0;
                if (!section[0] || len == 0 || strncmp(l + 1 + len, "* =", 3) != 0)
                        continue;
                n++;
                if (!conf_key_known(section, l + 1, len))
                        test_fail(__FILE__, __LINE__, "ipcfd.conf(5) documents [%s] %.*s, which the table lacks",
                                  section, (int)len, l + 1);
        }
        CHECK(n >= 20);
        free(text);
}

/* Installed where man looks: each section's page is found by name. */
TEST_TIMEOUT(installed_pages_are_found_by_man, 300) {
        const char *root = TEST_INSTALL();
        const char *pages[][2] = { { "1", "ipcf" }, { "8", "ipcfd" }, { "5", "ipcfd.conf" },
                                   { "3", "libipcf" }, { "3", "ipcf_alloc" }, { "3", "ipcf_version" } };
        for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
                char *where = TEST_SH_OK("man -M '%s/usr/local/share/man' -w %s %s", root, pages[i][0],
                                         pages[i][1]);
                char want[PATH_MAX + 64];
                snprintf(want, sizeof(want), "%s/usr/local/share/man/man%s/%s.%s", root, pages[i][0],
                         pages[i][1], pages[i][0]);
                if (strncmp(where, want, strlen(want)) != 0)
                        test_fail(__FILE__, __LINE__, "man -w %s %s: %s", pages[i][0], pages[i][1], where);
                free(where);
        }
}
