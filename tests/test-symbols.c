/*
 * test-symbols.c — what libipcf shows a program that links it: exactly the
 * functions of include/ipcf.h, versioned in the shared library
 * (src/lib/libipcf.map), and no internal name in either library, so that an
 * application with its own safe_close, str_copy, ring_* or ctl_* links
 * against libipcf.a and libipcf.so alike.
 *
 * The application is generated here from the internal archive of this build
 * (every global it defines besides ipcf_*), so a name added to the library
 * tomorrow is covered too; linked against libipcf-internal.a (which keeps
 * them global) it must fail, which shows the check would see a leak.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/shell.h"
#include "support/test.h"

#ifndef TEST_SRCDIR
#error "built by the Makefile, which defines TEST_SRCDIR, TEST_CC and TEST_SANFLAGS"
#endif

/* Sorted, newline-separated lists from shell pipelines. */
#define HEADER_FUNCS "sed -n 's/^IPCF_API[^(]*[ *]\\(ipcf_[a-z0-9_]*\\)(.*/\\1/p' '" TEST_SRCDIR "/include/ipcf.h' | sort -u"

/* Run cmd (a pipeline printing a sorted list) into <scratch>/name; returns
 * that path (static buffer, four in rotation). */
static const char *list_to(const char *name, const char *cmd) {
        static char buf[4][PATH_MAX];
        static unsigned next;
        char *path = buf[next++ % 4];
        snprintf(path, PATH_MAX, "%s/%s", getenv("TEST_SCRATCH"), name);
        free(TEST_SH_OK("%s >'%s'", cmd, path));
        return path;
}

/* A list that must be empty: fail with what it holds, else free it. */
#define CHECK_NONE(list, what) check_none(__LINE__, (list), (what))
static void check_none(int line, char *list, const char *what) {
        if (list[0])
                test_fail(__FILE__, line, "%s:\n%s", what, list);
        free(list);
}

TEST(header_matches_every_ipcf_api_line) {
        /* Every IPCF_API declaration names its function on its first line,
         * which is what the lists here and the version script rely on. */
        char *n_api = TEST_SH_OK("grep -c '^IPCF_API' '%s/include/ipcf.h'", TEST_SRCDIR);
        char *n_fn = TEST_SH_OK(HEADER_FUNCS " | wc -l");
        CHECK_EQ(atoi(n_api), atoi(n_fn));
        CHECK(atoi(n_fn) > 50);
        free(n_api);
        free(n_fn);
}

TEST(shared_library_exports_the_header_versioned_and_nothing_else) {
        char *so = test_built("lib/libipcf.so");
        char dyn[PATH_MAX + 128], ver[PATH_MAX + 160];
        /* Defined dynamic symbols, and those among them in an IPCF_1.* node. */
        snprintf(dyn, sizeof(dyn), "nm -D --defined-only '%s' | awk '{print $3}' | sed 's/@.*//' | sort -u", so);
        snprintf(ver, sizeof(ver),
                 "objdump -T '%s' | awk 'NF >= 2 && $(NF-1) ~ /^IPCF_1[.][0-9]+$/ && $NF ~ /^ipcf_/ {print $NF}' | sort -u", so);
        const char *header = list_to("header", HEADER_FUNCS), *exported = list_to("dyn", dyn),
                   *versioned = list_to("versioned", ver);
        CHECK_NONE(TEST_SH_OK("comm -23 '%s' '%s'", header, versioned),
                   "declared IPCF_API but not exported under IPCF_1.*: add to src/lib/libipcf.map");
        CHECK_NONE(TEST_SH_OK("comm -13 '%s' '%s' | grep -v '^IPCF_1[.][0-9]*$' || true", header, exported),
                   "exported but not in include/ipcf.h");
        free(so);
}

TEST(static_archive_keeps_only_the_api_global) {
        char *a = test_built("lib/libipcf.a");
        char cmd[PATH_MAX + 128];
        snprintf(cmd, sizeof(cmd), "nm -g --defined-only '%s' | awk 'NF == 3 {print $3}' | sort -u", a);
        const char *header = list_to("header", HEADER_FUNCS), *global = list_to("global", cmd);
        CHECK_NONE(TEST_SH_OK("comm -13 '%s' '%s'", header, global), "libipcf.a leaks internal names");
        CHECK_NONE(TEST_SH_OK("comm -23 '%s' '%s'", header, global), "libipcf.a lacks API functions");
        free(a);
}

/* Write <scratch>/app.c: every internal name of the library defined again
 * by the application, its own safe_close counting calls, and a main that
 * uses the library (a pipe needs no daemon) and its own safe_close. */
static const char *write_app(void) {
        static char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", getenv("TEST_SCRATCH"));
        char *internal = test_built("lib/libipcf-internal.a");
        char *n = TEST_SH_OK(
                "nm -g --defined-only '%s' | awk 'NF == 3 && $3 !~ /^ipcf_/ && $3 != \"safe_close\" "
                "{print $3}' | sort -u | tee '%s/names' | "
                "sed 's/.*/void &(void); void &(void) {}/' >'%s/internal.c' && wc -l <'%s/names'",
                internal, dir, dir, dir);
        CHECK(atoi(n) >= 50); /* the ~100 names of the issue, minus safe_close */
        char *check = TEST_SH_OK("grep -qx str_copy '%s/names' && grep -q '^ring_' '%s/names' && "
                                 "grep -q '^ctl_' '%s/names'", dir, dir, dir);
        FILE *f = fopen(strcat(strcpy((char[PATH_MAX + 8]){ 0 }, dir), "/app.c"), "w");
        CHECK(f != NULL);
        fprintf(f,
                "#include <stdio.h>\n#include <string.h>\n#include <unistd.h>\n#include <ipcf.h>\n"
                "#include \"internal.c\"\n"
                "static int own_calls;\n"
                "int safe_close(int fd);\n"
                "int safe_close(int fd) { own_calls++; return fd >= 0 ? close(fd) : 0; }\n"
                "int main(void) {\n"
                "        int p[2]; char buf[16];\n"
                "        if (ipcf_version() != ((uint32_t)IPCF_VERSION_MAJOR << 16 | IPCF_VERSION_MINOR))\n"
                "                return printf(\"version %%x\\n\", ipcf_version()), 1;\n"
                "        if (ipcf_pipe(NULL, p) < 0 || ipcf_write(p[0], \"ping\", 4, 1000) != 4 ||\n"
                "            ipcf_read(p[1], buf, sizeof(buf), 1000) != 4 || memcmp(buf, \"ping\", 4))\n"
                "                return puts(\"pipe failed\"), 1;\n"
                "        ipcf_dealloc(p[0], \"done\");\n"
                "        ipcf_dealloc(p[1], \"done\");\n"
                "        safe_close(dup(0));\n"
                "        printf(\"own safe_close called %%d\\n\", own_calls);\n"
                "        return own_calls == 1 ? 0 : 1;\n"
                "}\n");
        fclose(f);
        free(internal);
        free(n);
        free(check);
        return dir;
}

/* The case: an application with its own safe_close (and every other
 * internal name) links the static library and runs; the library still uses
 * its own internals and the application its own. */
TEST_TIMEOUT(application_with_internal_names_links_libipcf_a, 120) {
        const char *dir = write_app();
        char *a = test_built("lib/libipcf.a"), *inc = NULL;
        if (asprintf(&inc, "%s/include", TEST_SRCDIR) < 0)
                abort();
        free(TEST_SH_OK("cd '%s' && %s %s -I'%s' -o app-static app.c '%s' -lpthread", dir, TEST_CC,
                        TEST_SANFLAGS, inc, a));
        char *out = TEST_SH_OK("'%s/app-static'", dir);
        CHECK(strcmp(out, "own safe_close called 1\n") == 0);
        /* The control: the same application against an archive that keeps
         * the names global does not link, naming the clash. */
        char *internal = test_built("lib/libipcf-internal.a"), *err = NULL;
        int st = test_sh(&err, 120, "cd '%s' && %s %s -I'%s' -o app-bad app.c '%s' -lpthread", dir,
                         TEST_CC, TEST_SANFLAGS, inc, internal);
        CHECK(st != 0);
        if (!strstr(err, "multiple definition"))
                test_fail(__FILE__, __LINE__, "control link: %s", err);
        free(a);
        free(inc);
        free(out);
        free(internal);
        free(err);
}

TEST_TIMEOUT(application_with_internal_names_links_libipcf_so, 120) {
        const char *dir = write_app();
        char *so = test_built("lib/libipcf.so"), *libdir = strdup(so), *inc = NULL;
        *strrchr(libdir, '/') = 0;
        if (asprintf(&inc, "%s/include", TEST_SRCDIR) < 0)
                abort();
        free(TEST_SH_OK("cd '%s' && %s %s -I'%s' -o app-shared app.c -L'%s' -lipcf", dir, TEST_CC,
                        TEST_SANFLAGS, inc, libdir));
        setenv("LD_LIBRARY_PATH", libdir, 1);
        char *out = TEST_SH_OK("'%s/app-shared'", dir);
        CHECK(strcmp(out, "own safe_close called 1\n") == 0);
        /* Its references to the library are versioned. */
        char *ver = TEST_SH_OK("objdump -T '%s/app-shared' | grep -cE 'IPCF_1[.][0-9]+[)]? +ipcf_pipe$'", dir);
        CHECK(atoi(ver) == 1);
        free(so);
        free(libdir);
        free(inc);
        free(out);
        free(ver);
}

TEST(version_at_run_time_is_the_headers) {
        CHECK_EQ(ipcf_version(), (uint32_t)IPCF_VERSION_MAJOR << 16 | IPCF_VERSION_MINOR);
}
