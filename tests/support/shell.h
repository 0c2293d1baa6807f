/*
 * shell.h — run shell commands from a test, for the parts of the product that
 * are files and programs rather than functions: the installed tree, systemd
 * units, man pages, shell completion.
 *
 * Each command runs as `/bin/sh -c CMD` in a process group of its own, with
 * stdin from /dev/null and stdout and stderr together captured; after
 * timeout_s seconds the whole group is killed. The test's environment is the
 * command's: set variables with setenv() first, or in CMD.
 */
#pragma once

#include "support/test.h"

/* Run the printf-formatted command. Returns its exit status, 128+signal if it
 * was killed, or -ETIMEDOUT. If ret_out is not NULL it receives what the
 * command printed (malloc'ed, NUL-terminated; the caller frees it). */
int test_sh(char **ret_out, unsigned timeout_s, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Start the printf-formatted command (`/bin/sh -c CMD`) in the background,
 * with the test's stdin, stdout and stderr (redirect them in CMD); returns
 * its pid, for kill() and test_wait(). */
pid_t test_sh_bg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* As test_sh with a 300 s bound, but the command must exit 0: otherwise the
 * case fails, showing the command and its output. Returns the output. */
#define TEST_SH_OK(...) test_sh_ok(__FILE__, __LINE__, __VA_ARGS__)
char *test_sh_ok(const char *file, int line, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* "$TEST_SCRATCH/name": a path in the case's scratch directory (a static
 * buffer, eight in rotation: valid for the next seven calls). */
const char *test_scratch(const char *name);

/* The absolute path of a program or file of this build ($IPCF_BUILD/rel,
 * which must exist); malloc'ed, the caller frees it. */
char *test_built(const char *rel);

/* The absolute path of this build ($IPCF_BUILD); a static buffer. */
const char *test_build_abs(void);

/* `make ARGS` (printf-formatted; at least one argument after fmt) in the
 * source tree the test was built from, on its build, with its compiler and
 * sanitizer (TEST_SRCDIR, TEST_CC, TEST_SAN: the Makefile defines them for
 * tests), outside the job server of any make running the test. Must exit 0;
 * returns the output. */
#define TEST_MAKE(fmt, ...)                                                            \
        test_sh_ok(__FILE__, __LINE__,                                                 \
                   "unset MAKEFLAGS MFLAGS MAKELEVEL; make --no-print-directory -C '%s' " \
                   "BUILD='%s' CC='%s' SAN='%s' " fmt,                                 \
                   TEST_SRCDIR, test_build_abs(), TEST_CC, TEST_SAN, __VA_ARGS__)

/* `make install` of this build into DESTDIR "$TEST_SCRATCH/root" with
 * PREFIX=/usr/local; yields that DESTDIR (a static buffer of its own). */
#define TEST_INSTALL() \
        ({ free(TEST_MAKE("install DESTDIR='%s' PREFIX=/usr/local >/dev/null", test_install_root())); \
           test_install_root(); })
const char *test_install_root(void);

/* Programs started from now on use the tree installed under root (DESTDIR,
 * PREFIX /usr/local): its library (LD_LIBRARY_PATH) and, started on demand
 * by that library, its daemon on runtime_dir (IPCF_DAEMON, autostart on). */
void test_use_installed(const char *root, const char *runtime_dir);
