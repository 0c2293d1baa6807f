/*
 * test-install.c — ipcf as a user installs it: `make install` into a
 * temporary DESTDIR, the files where the FHS puts them, the examples built
 * from the installed tree with nothing but `pkg-config --cflags --libs ipcf`
 * (pipe-echo is only built: it needs a parent; the libuv and GLib loops
 * with their library's pkg-config name too) and run against the
 * installed library and the installed daemon (started
 * by the library's autostart), the README's program built with
 * PKG_CONFIG_PATH alone pointing into the DESTDIR (the .pc is relocatable),
 * `make uninstall` leaving nothing behind, ldconfig run by a real install
 * only, and a plain `make` that needs none of the benchmark peers.
 *
 * The nested make runs in the source tree this test was built from
 * (TEST_SRCDIR) on the build it belongs to ($IPCF_BUILD, already built: it
 * only copies). Examples are compiled with the compiler and sanitizer flags
 * of this build (TEST_CC, TEST_SANFLAGS), so an ASan build tests an ASan
 * library.
 */
#include <limits.h>
#include <signal.h>
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

#define PREFIX "/usr/local"

/* Install into <scratch>/root with PREFIX; returns the DESTDIR. */
static const char *install_tree(void) {
        return TEST_INSTALL();
}

/* Does the file at path contain needle (whole_line: as a whole line)? */
static bool file_has(const char *path, const char *needle, bool whole_line) {
        char *out = NULL;
        int r = test_sh(&out, 30, "grep -qF%s -- '%s' '%s'", whole_line ? "x" : "", needle, path);
        free(out);
        return r == 0;
}

static mode_t mode_of(const char *root, const char *rel) {
        char p[PATH_MAX];
        struct stat st;
        snprintf(p, sizeof(p), "%s%s", root, rel);
        if (lstat(p, &st) < 0)
                test_fail(__FILE__, __LINE__, "%s not installed", p);
        return st.st_mode;
}

static void check_link(const char *root, const char *rel, const char *target) {
        char p[PATH_MAX], t[PATH_MAX];
        snprintf(p, sizeof(p), "%s%s", root, rel);
        ssize_t n = readlink(p, t, sizeof(t) - 1);
        if (n < 0)
                test_fail(__FILE__, __LINE__, "%s is not a symlink", p);
        t[n] = 0;
        if (strcmp(t, target) != 0)
                test_fail(__FILE__, __LINE__, "%s -> %s, want %s", p, t, target);
}

/* The start of a script that runs against an autostarted daemon on runtime
 * dir %s: on exit, whatever happened, it stops its own background jobs
 * (which could otherwise start a new daemon once theirs is gone), then that
 * daemon (the pid in its pid file) and waits until it has exited (gone, or a zombie its new parent
 * has not reaped yet), 10 s at most. Polls of `ipcf ls` in the script must
 * run with IPCF_NO_AUTOSTART=1: a second autostart racing the first may
 * start a daemon that takes the runtime dir only after the first has been
 * stopped, and outlives the case. */
#define STOP_DAEMON_ON_EXIT                                                               \
        "trap 'kill $(jobs -p) 2>/dev/null; wait; "                                         \
        "p=$(cat \"%s/ipcfd.pid\" 2>/dev/null) && kill $p && i=0 && "                      \
        "while [ $i -lt 500 ] && [ -d /proc/$p ] && ! grep -q \"^State:.*Z\" /proc/$p/status; " \
        "do i=$((i+1)); sleep 0.02; done' EXIT && "

/* Fails the case if a daemon still runs on runtime dir run. */
static void check_no_daemon_left(const char *run) {
        char *left = NULL;
        if (test_sh(&left, 30, "pgrep -af -- '^[^ ]*ipcfd --runtime-dir %s( |$)'", run) == 0)
                test_fail(__FILE__, __LINE__, "a daemon outlived the case:\n%s", left);
        free(left);
}

/* `make uninstall` into root with the make variables vars: no file stays
 * (directories may: they can be shared with other packages). */
static void uninstall_leaves_nothing(const char *root, const char *vars) {
        free(TEST_MAKE("uninstall DESTDIR='%s' %s >/dev/null", root, vars));
        char *left = TEST_SH_OK("find '%s' ! -type d", root);
        if (left[0])
                test_fail(__FILE__, __LINE__, "uninstall left:\n%s", left);
        free(left);
}

#define STR2(x) #x
#define STR(x) STR2(x)
#define VERSION_MM STR(IPCF_VERSION_MAJOR) "." STR(IPCF_VERSION_MINOR)
#define SONAME "libipcf.so." STR(IPCF_VERSION_MAJOR)

/* The files, their modes and links; SONAME in the ELF header; the .pc. */
TEST_TIMEOUT(install_puts_files_in_fhs_places, 300) {
        const char *root = install_tree();
        CHECK((mode_of(root, PREFIX "/bin/ipcfd") & 0777) == 0755);
        CHECK((mode_of(root, PREFIX "/bin/ipcf") & 0777) == 0755);
        CHECK((mode_of(root, PREFIX "/include/ipcf.h") & 0777) == 0644);
        CHECK((mode_of(root, PREFIX "/lib/libipcf.a") & 0777) == 0644);
        CHECK((mode_of(root, PREFIX "/lib/pkgconfig/ipcf.pc") & 0777) == 0644);
        /* libipcf.so -> libipcf.so.MAJOR -> libipcf.so.MAJOR.MINOR.PATCH */
        check_link(root, PREFIX "/lib/libipcf.so", SONAME);
        char *real = TEST_SH_OK("cd '%s" PREFIX "/lib' && ls libipcf.so.*.*.*", root);
        real[strcspn(real, "\n")] = 0;
        CHECK(strncmp(real, SONAME "." STR(IPCF_VERSION_MINOR) ".", strlen(SONAME) + 2) == 0);
        check_link(root, PREFIX "/lib/" SONAME, real);
        char rel[PATH_MAX];
        snprintf(rel, sizeof(rel), PREFIX "/lib/%s", real);
        CHECK(S_ISREG(mode_of(root, rel)));
        char *soname = TEST_SH_OK("readelf -d '%s" PREFIX "/lib/%s' | sed -n 's/.*SONAME.*\\[\\(.*\\)\\]/\\1/p'",
                                  root, real);
        if (strcmp(soname, SONAME "\n") != 0)
                test_fail(__FILE__, __LINE__, "SONAME %s, want " SONAME, soname);
        /* The header is the source's, byte for byte. */
        free(TEST_SH_OK("cmp '%s/include/ipcf.h' '%s" PREFIX "/include/ipcf.h'", TEST_SRCDIR, root));
        /* The .pc is relocatable (its prefix is where it lies, ../.. of
         * its folder): it names neither DESTDIR nor the build tree, and
         * PKG_CONFIG_PATH alone, pointed into the DESTDIR, gives the
         * DESTDIR's paths. */
        char pc[PATH_MAX];
        snprintf(pc, sizeof(pc), "%s" PREFIX "/lib/pkgconfig/ipcf.pc", root);
        CHECK(file_has(pc, "prefix=${pcfiledir}/../..", true));
        CHECK(file_has(pc, "libdir=${prefix}/lib", true));
        CHECK(file_has(pc, "Version: " VERSION_MM ".", false));
        CHECK(!file_has(pc, root, false));
        CHECK(!file_has(pc, test_build_abs(), false));
        char *inc = TEST_SH_OK("env -u PKG_CONFIG_LIBDIR -u PKG_CONFIG_SYSROOT_DIR "
                               "PKG_CONFIG_PATH='%s" PREFIX "/lib/pkgconfig' "
                               "pkg-config --variable=includedir ipcf", root);
        inc[strcspn(inc, "\n")] = 0;
        char *same = TEST_SH_OK("realpath '%s'", inc);
        char want_inc[PATH_MAX + 32];
        snprintf(want_inc, sizeof(want_inc), "%s" PREFIX "/include\n", root);
        if (strcmp(same, want_inc) != 0)
                test_fail(__FILE__, __LINE__, "includedir %s is not %s", inc, want_inc);
        free(inc);
        free(same);
        free(real);
        free(soname);
}

/* A distribution's layout: LIBDIR outside PREFIX/lib is honoured and the .pc
 * says ${prefix}/lib/<triplet>, with prefix=/usr as Debian's do. */
TEST_TIMEOUT(install_honours_libdir, 300) {
        const char *root = test_scratch("root");
        free(TEST_MAKE("install DESTDIR='%s' PREFIX=/usr LIBDIR=/usr/lib/x86_64-linux-gnu >/dev/null", root));
        CHECK(S_ISLNK(mode_of(root, "/usr/lib/x86_64-linux-gnu/" SONAME)));
        char pc[PATH_MAX];
        snprintf(pc, sizeof(pc), "%s/usr/lib/x86_64-linux-gnu/pkgconfig/ipcf.pc", root);
        CHECK(file_has(pc, "libdir=${prefix}/lib/x86_64-linux-gnu", true));
        CHECK(file_has(pc, "prefix=/usr", true));
        uninstall_leaves_nothing(root, "PREFIX=/usr LIBDIR=/usr/lib/x86_64-linux-gnu");
}

/* Everything install put there, uninstall takes away (directories may stay:
 * they can be shared with other packages). */
TEST_TIMEOUT(uninstall_removes_every_file, 300) {
        const char *root = install_tree();
        char *before = TEST_SH_OK("find '%s' ! -type d | wc -l", root);
        CHECK(atoi(before) >= 8);
        uninstall_leaves_nothing(root, "PREFIX=" PREFIX);
        free(before);
}

/* Blanks in DESTDIR (and in every directory the user names) are part of the
 * path: install puts the same files there as into a plain DESTDIR, the .pc
 * and the units name the PREFIX paths, and uninstall takes all of them
 * away. */
TEST_TIMEOUT(install_and_uninstall_take_paths_with_blanks, 300) {
        const char *root = test_scratch("a b/c"); /* no other test_scratch() below */
        const char *dirs = "PREFIX=/usr/local BINDIR='/usr/local/my bin' "
                           "SYSTEMDUSERUNITDIR='/usr/local/lib/systemd/user units'";
        free(TEST_MAKE("install DESTDIR='%s' %s >/dev/null", root, dirs));
        CHECK((mode_of(root, "/usr/local/my bin/ipcfd") & 0777) == 0755);
        CHECK((mode_of(root, "/usr/local/my bin/ipcf") & 0777) == 0755);
        CHECK((mode_of(root, PREFIX "/include/ipcf.h") & 0777) == 0644);
        CHECK((mode_of(root, PREFIX "/lib/libipcf.a") & 0777) == 0644);
        check_link(root, PREFIX "/lib/libipcf.so", SONAME);
        CHECK((mode_of(root, PREFIX "/share/man/man3/libipcf.3") & 0777) == 0644);
        CHECK((mode_of(root, PREFIX "/share/bash-completion/completions/ipcf") & 0777) == 0644);
        char pc[PATH_MAX];
        snprintf(pc, sizeof(pc), "%s" PREFIX "/lib/pkgconfig/ipcf.pc", root);
        CHECK((mode_of(root, PREFIX "/lib/pkgconfig/ipcf.pc") & 0777) == 0644);
        CHECK(file_has(pc, "prefix=${pcfiledir}/../..", true));
        /* Every unit is there and names the BINDIR given (not the DESTDIR),
         * its blank written \s as systemd reads it. */
        char *units = TEST_SH_OK("ls '%s/usr/local/lib/systemd/user units' | wc -l", root);
        CHECK(atoi(units) >= 1);
        char *named = TEST_SH_OK("grep -lF 'ExecStart=/usr/local/my\\sbin/ipcfd' "
                                 "'%s/usr/local/lib/systemd/user units'/* | wc -l", root);
        CHECK(atoi(named) >= 1);
        uninstall_leaves_nothing(root, dirs);
        /* A PREFIX with a blank: the .pc names its directories under
         * ${prefix} (relocatable) and pkg-config escapes the blanks. */
        free(TEST_MAKE("install DESTDIR='%s' PREFIX='/opt/my app' >/dev/null", root));
        char pc2[PATH_MAX];
        snprintf(pc2, sizeof(pc2), "%s/opt/my app/lib/pkgconfig/ipcf.pc", root);
        CHECK(file_has(pc2, "libdir=${prefix}/lib", true));
        CHECK(file_has(pc2, "includedir=${prefix}/include", true));
        free(TEST_SH_OK("export PKG_CONFIG_PATH='%s/opt/my app/lib/pkgconfig'; "
                        "eval \"set -- $(pkg-config --cflags ipcf)\"; test -f \"${1#-I}/ipcf.h\"", root));
        uninstall_leaves_nothing(root, "PREFIX='/opt/my app'");
        free(units);
        free(named);
}

/* The examples, built from a copy outside the tree with nothing but
 * pkg-config, run against the installed library; the daemon they reach is
 * the installed one, started by the installed library's autostart. */
TEST_TIMEOUT(examples_build_with_pkg_config_and_run_installed, 300) {
        const char *root = install_tree();
        char lib[PATH_MAX], bin[PATH_MAX], ex[PATH_MAX], run[PATH_MAX];
        snprintf(lib, sizeof(lib), "%s" PREFIX "/lib", root);
        snprintf(bin, sizeof(bin), "%s" PREFIX "/bin", root);
        snprintf(ex, sizeof(ex), "%s", test_scratch("ex"));
        snprintf(run, sizeof(run), "%s", test_scratch("run"));
        free(TEST_SH_OK("mkdir -p '%s' && cp '%s'/examples/*.c '%s'/examples/*.h '%s'/", ex, TEST_SRCDIR,
                        TEST_SRCDIR, ex));

        /* pkg-config sees only the DESTDIR's .pc; SYSROOT_DIR maps its
         * /usr/local paths into the DESTDIR. */
        char pcpath[PATH_MAX + 16];
        snprintf(pcpath, sizeof(pcpath), "%s/pkgconfig", lib);
        setenv("PKG_CONFIG_LIBDIR", pcpath, 1);
        unsetenv("PKG_CONFIG_PATH");
        setenv("PKG_CONFIG_SYSROOT_DIR", root, 1);
        char *flags = TEST_SH_OK("pkg-config --cflags --libs ipcf");
        flags[strcspn(flags, "\n")] = 0;
        if (!strstr(flags, root) || strstr(flags, TEST_SRCDIR "/"))
                test_fail(__FILE__, __LINE__, "pkg-config says '%s'", flags);
        free(TEST_SH_OK("cd '%s' && for e in echo-server echo-client pipe-echo eventloop-epoll; do "
                        "%s %s -o $e $e.c $(pkg-config --cflags --libs ipcf) || exit 1; done",
                        ex, TEST_CC, TEST_SANFLAGS));
        /* The libuv and GLib loops as their comments say: pkg-config for ipcf
         * and the loop's library together (the system's .pc files, the
         * DESTDIR's ipcf.pc through PKG_CONFIG_PATH alone). */
        free(TEST_SH_OK("cd '%s' && env -u PKG_CONFIG_LIBDIR -u PKG_CONFIG_SYSROOT_DIR "
                        "PKG_CONFIG_PATH='%s' sh -c '"
                        "%s %s -o eventloop-uv eventloop-uv.c $(pkg-config --cflags --libs ipcf libuv) && "
                        "%s %s -o eventloop-glib eventloop-glib.c $(pkg-config --cflags --libs ipcf glib-2.0)'",
                        ex, pcpath, TEST_CC, TEST_SANFLAGS, TEST_CC, TEST_SANFLAGS));

        /* Linked to the shared library by its SONAME: without the installed
         * lib on the search path it does not even start. */
        char *miss = NULL;
        int st = test_sh(&miss, 30, "env -u LD_LIBRARY_PATH '%s/echo-client' x", ex);
        CHECK(st != 0);
        if (!strstr(miss, SONAME))
                test_fail(__FILE__, __LINE__, "started without the library? (%d) %s", st, miss);
        setenv("LD_LIBRARY_PATH", lib, 1);
        char *ldd = TEST_SH_OK("ldd '%s/echo-client'", ex);
        char want[PATH_MAX + 64];
        snprintf(want, sizeof(want), SONAME " => %s/" SONAME, lib);
        if (!strstr(ldd, want))
                test_fail(__FILE__, __LINE__, "ldd:\n%s\nwant %s", ldd, want);

        /* The installed library starts the installed daemon on demand. */
        CHECK(mkdir(run, 0700) == 0);
        setenv("IPCF_RUNTIME_DIR", run, 1);
        unsetenv("IPCF_NO_AUTOSTART");
        char daemon[PATH_MAX + 16];
        snprintf(daemon, sizeof(daemon), "%s/ipcfd", bin);
        setenv("IPCF_DAEMON", daemon, 1);
        /* One script, so that the daemon is stopped whatever happens (it
         * runs in a session of its own, out of the case's reach). */
        char want_exe[PATH_MAX];
        CHECK(realpath(daemon, want_exe) != NULL);
        free(TEST_SH_OK("cd '%s' && " STOP_DAEMON_ON_EXIT
                        "{ ./echo-server greeter & } && i=0; "
                        "until IPCF_NO_AUTOSTART=1 '%s/ipcf' ls 2>/dev/null | grep -q greeter; do "
                        "i=$((i+1)); [ $i -lt 500 ] || exit 1; sleep 0.02; done; "
                        "out=$(./echo-client greeter 'hello, installed') && "
                        "[ \"$out\" = 'hello, installed' ] && wait && "
                        "exe=$(readlink \"/proc/$(cat '%s/ipcfd.pid')/exe\") && "
                        "{ [ \"$exe\" = '%s' ] || { echo \"the daemon is $exe\"; exit 1; }; }",
                        ex, run, bin, run, want_exe));
        check_no_daemon_left(run);
        /* Each event loop serves one flow of the installed echo-client. */
        char *loops = TEST_SH_OK("cd '%s' && " STOP_DAEMON_ON_EXIT
                                 "for l in epoll uv glib; do "
                                 "{ ./eventloop-$l loop.$l 1 >out.$l & } && i=0; "
                                 "until IPCF_NO_AUTOSTART=1 '%s/ipcf' ls 2>/dev/null | grep -q loop.$l; do "
                                 "i=$((i+1)); [ $i -lt 500 ] || exit 1; sleep 0.02; done; "
                                 "./echo-client loop.$l \"by $l\" && wait && cat out.$l || exit 1; done",
                                 ex, run, bin);
        if (strcmp(loops, "by epoll\nflows 1 messages 1 bytes 8\nby uv\nflows 1 messages 1 bytes 5\n"
                          "by glib\nflows 1 messages 1 bytes 7\n") != 0)
                test_fail(__FILE__, __LINE__, "the event loops said:\n%s", loops);
        free(loops);
        check_no_daemon_left(run);
        free(flags);
        free(miss);
        free(ldd);
}

/* The README's "use it from a program" is a program: its first C block,
 * built as the README says, talks to the installed `ipcf listen --echo`. */
TEST_TIMEOUT(readme_program_builds_and_runs, 300) {
        const char *root = install_tree();
        char lib[PATH_MAX], bin[PATH_MAX], dir[PATH_MAX];
        snprintf(lib, sizeof(lib), "%s" PREFIX "/lib", root);
        snprintf(bin, sizeof(bin), "%s" PREFIX "/bin", root);
        snprintf(dir, sizeof(dir), "%s", test_scratch("readme"));
        CHECK(mkdir(dir, 0700) == 0);
        free(TEST_SH_OK("awk '/^```c$/{f=1;next} /^```$/{if(f)exit} f' '%s/README.md' >'%s/hello.c' && "
                        "grep -q ipcf_alloc '%s/hello.c'", TEST_SRCDIR, dir, dir));
        /* Only PKG_CONFIG_PATH into the DESTDIR, as a user staging it would. */
        char pcpath[PATH_MAX + 16];
        snprintf(pcpath, sizeof(pcpath), "%s/pkgconfig", lib);
        unsetenv("PKG_CONFIG_LIBDIR");
        unsetenv("PKG_CONFIG_SYSROOT_DIR");
        setenv("PKG_CONFIG_PATH", pcpath, 1);
        free(TEST_SH_OK("cd '%s' && %s %s -Wall -Werror hello.c $(pkg-config --cflags --libs ipcf) -o hello",
                        dir, TEST_CC, TEST_SANFLAGS));
        test_use_installed(root, dir);
        char *out = TEST_SH_OK("cd '%s' && " STOP_DAEMON_ON_EXIT
                               "{ '%s/ipcf' listen greeter --echo >/dev/null & } && i=0; "
                               "until IPCF_NO_AUTOSTART=1 '%s/ipcf' ls 2>/dev/null | grep -q greeter; do "
                               "i=$((i+1)); [ $i -lt 500 ] || exit 1; sleep 0.02; done; ./hello",
                               dir, dir, bin, bin);
        check_no_daemon_left(dir);
        if (strcmp(out, "hello\n") != 0)
                test_fail(__FILE__, __LINE__, "the README's program printed '%s'", out);
        free(out);
}

/* A real install (no DESTDIR) by root refreshes the loader's cache, so that
 * a program linked with -lipcf starts at once; a staged one does not touch
 * the machine. (Shown by make -n: this test does not install into /usr.) */
TEST(live_install_runs_ldconfig_staged_does_not) {
        char *live = TEST_SH_OK("unset MAKEFLAGS MFLAGS MAKELEVEL; make -n -C '%s' BUILD='%s' install uninstall",
                                TEST_SRCDIR, test_build_abs());
        char *staged = TEST_SH_OK("unset MAKEFLAGS MFLAGS MAKELEVEL; make -n -C '%s' BUILD='%s' DESTDIR=/x "
                                  "install uninstall", TEST_SRCDIR, test_build_abs());
        const char *first = strstr(live, "ldconfig");
        CHECK(first != NULL && strstr(first + 1, "ldconfig") != NULL);
        CHECK(strstr(staged, "ldconfig") == NULL);
        free(live);
        free(staged);
}

/* A plain `make` builds the product only: no benchmark peer (rpcgen, NNG,
 * ZeroMQ, D-Bus) and no test or benchmark program is part of it. */
TEST(plain_make_needs_no_benchmark_peers) {
        char *all = TEST_SH_OK("unset MAKEFLAGS MFLAGS MAKELEVEL; make -n -C '%s' BUILD='%s' all",
                               TEST_SRCDIR, test_scratch("fresh"));
        const char *banned[] = { "rpcgen", "-lnng", "-lzmq", "dbus", "/bench/", "/tests/" };
        for (size_t i = 0; i < sizeof(banned) / sizeof(banned[0]); i++)
                if (strstr(all, banned[i]))
                        test_fail(__FILE__, __LINE__, "`make all` would run something with %s", banned[i]);
        CHECK(strstr(all, "libipcf.so") != NULL);
        CHECK(strstr(all, "bin/ipcfd") != NULL);
        CHECK(strstr(all, "examples/echo-client") != NULL);
        /* ... while `make bench` does build the peers' programs. */
        char *bench = TEST_SH_OK("unset MAKEFLAGS MFLAGS MAKELEVEL; make -n -C '%s' BUILD='%s' benches",
                                 TEST_SRCDIR, test_scratch("fresh"));
        CHECK(strstr(bench, "rpcgen") != NULL && strstr(bench, "-lnng") != NULL);
        free(all);
        free(bench);
}
