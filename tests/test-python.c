/*
 * test-python.c — the Python package (python/) in `make check`: its pytest
 * suite against a real ipcfd of this build, and the package as a user
 * installs it (pip, offline, from the tree) against an installed DESTDIR,
 * running its echo examples with the installed library and daemon.
 *
 * Needs Debian's python3-cffi, python3-pytest, python3-setuptools and
 * python3-venv (tools/setup.sh installs them). Only if python3-cffi is
 * missing do the cases pass without running, saying so on stdout; a missing
 * pytest or venv is a failure.
 *
 * Sanitizer builds: the library is instrumented and python3 is not, so the
 * sanitizer's runtime is preloaded into python (LD_PRELOAD) and leak checks
 * are off (CPython keeps its memory till exit); the daemon the tests start
 * runs without the preload (conftest.py drops it).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "support/shell.h"
#include "support/test.h"

#ifndef TEST_SRCDIR
#error "built by the Makefile, which defines TEST_SRCDIR, TEST_CC and TEST_SAN"
#endif

#define PYTHON "/usr/bin/python3"
#define PREFIX "/usr/local"

/* false (and says why) when python3-cffi is not there to run anything. */
static bool have_cffi(void) {
        if (test_sh(NULL, 60, PYTHON " -c 'import cffi'") == 0)
                return true;
        printf("SKIP: python3-cffi is not installed (tools/setup.sh installs it): "
               "the Python package is not tested\n");
        return false;
}

/* Under a sanitizer, its runtime goes into python first. */
static void preload_sanitizer(void) {
        if (!TEST_SAN[0])
                return;
        const char *lib = strstr(TEST_CC, "clang") ? "libclang_rt.asan-x86_64.so" : "libasan.so";
        if (strcmp(TEST_SAN, "tsan") == 0)
                lib = strstr(TEST_CC, "clang") ? "libclang_rt.tsan-x86_64.so" : "libtsan.so";
        char *path = TEST_SH_OK("%s -print-file-name=%s", TEST_CC, lib);
        path[strcspn(path, "\n")] = 0;
        setenv("LD_PRELOAD", path, 1);
        setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
        free(path);
}

/* The pytest suite, every test run and passed: none skipped. */
TEST_TIMEOUT(pytest_suite_passes, 600) {
        if (!have_cffi())
                return;
        preload_sanitizer();
        setenv("IPCF_BUILD", test_build_abs(), 1);
        setenv("PYTHONDONTWRITEBYTECODE", "1", 1); /* nothing written into the tree */
        unsetenv("IPCF_LIBRARY");
        unsetenv("IPCF_DAEMON");
        char *out = NULL;
        int st = test_sh(&out, 540, "cd '%s' && " PYTHON " -m pytest -q -p no:cacheprovider -rs python/tests",
                         TEST_SRCDIR);
        if (st != 0 || strstr(out, "skipped") || !strstr(out, " passed"))
                test_fail(__FILE__, __LINE__, "pytest exited %d:\n%s", st, out);
        size_t n = strlen(out);
        while (n > 0 && out[n - 1] == '\n')
                out[--n] = 0;
        printf("pytest: %s\n", strrchr(out, '\n') ? strrchr(out, '\n') + 1 : out);
        free(out);
}

/* pip installs the package from a copy of python/ (offline: no index, the
 * build tools are Debian's) into a venv that sees Debian's cffi; its echo
 * examples run from elsewhere against the installed library and the
 * installed daemon, which the library starts on demand. */
TEST_TIMEOUT(pip_install_and_echo_against_installed_tree, 600) {
        if (!have_cffi())
                return;
        preload_sanitizer();
        const char *root = TEST_INSTALL();
        char lib[PATH_MAX], venv[PATH_MAX], src[PATH_MAX], run[PATH_MAX];
        snprintf(lib, sizeof(lib), "%s" PREFIX "/lib", root);
        snprintf(venv, sizeof(venv), "%s", test_scratch("venv"));
        snprintf(src, sizeof(src), "%s", test_scratch("pysrc"));
        snprintf(run, sizeof(run), "%s", test_scratch("run"));
        free(TEST_SH_OK("rm -rf '%s' && cp -r '%s/python' '%s' && rm -rf '%s/build' '%s'/*.egg-info && "
                        PYTHON " -m venv --system-site-packages '%s' && "
                        "'%s/bin/python' -m pip install -q --no-index --no-build-isolation '%s'",
                        src, TEST_SRCDIR, src, src, src, venv, venv, src));
        /* The venv's package is the one imported, and it loads the installed library. */
        CHECK(mkdir(run, 0700) == 0);
        test_use_installed(root, run);
        unsetenv("IPCF_LIBRARY");
        unsetenv("PYTHONPATH");
        char *where = TEST_SH_OK("cd '%s' && '%s/bin/python' -c 'import ipcf; print(ipcf.__file__); "
                                 "print(*[l.split()[-1] for l in open(\"/proc/self/maps\") if \"libipcf\" in l][:1])'",
                                 run, venv);
        char want_lib[2 * PATH_MAX];
        snprintf(want_lib, sizeof(want_lib), "\n%s/libipcf.so.", lib);
        if (strncmp(where, venv, strlen(venv)) != 0 || !strstr(where, want_lib))
                test_fail(__FILE__, __LINE__, "imported and loaded %s, not the venv's and %s", where, lib);
        /* The installed daemon, started by hand: under a sanitizer it must
         * not inherit python's preload (the library's autostart, which
         * would pass it on, is test-install's). The client tries until the
         * server has registered. */
        setenv("IPCF_NO_AUTOSTART", "1", 1);
        char *out = TEST_SH_OK("cd '%s' && { env -u LD_PRELOAD '%s/usr/local/bin/ipcfd' --runtime-dir '%s' & } && "
                               "d=$! && trap 'kill $d' EXIT && i=0 && until [ -S ipcfd.sock ]; do "
                               "i=$((i+1)) && [ $i -lt 250 ] && sleep 0.02 || exit 1; done && "
                               "py='%s/bin/python' && { $py '%s/examples/echo_server.py' greeter -k & } && "
                               "for i in $(seq 250); do "
                               "$py '%s/examples/echo_client.py' greeter 'hello, pip' 2>/dev/null && exit 0; "
                               "sleep 0.04; done; exit 1",
                               run, root, run, venv, src, src);
        if (!strstr(out, "hello, pip\n"))
                test_fail(__FILE__, __LINE__, "the examples printed:\n%s", out);
        free(where);
        free(out);
}
