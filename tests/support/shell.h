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

/* As test_sh with a 300 s bound, but the command must exit 0: otherwise the
 * case fails, showing the command and its output. Returns the output. */
#define TEST_SH_OK(...) test_sh_ok(__FILE__, __LINE__, __VA_ARGS__)
char *test_sh_ok(const char *file, int line, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
