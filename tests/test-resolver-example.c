/*
 * test-resolver-example.c — the worked example of a resolver in
 * docs/ARCHITECTURE.md is true to the code: tests/daemons/closed-resolver.c,
 * linked into a real ipcfd (build/tests/ipcfd-closed-resolver), answers its
 * names in its place of the order, through the library.
 *
 * Also checks that the document quotes the example as it is: the resolver's
 * code in the document and in the file are the same lines.
 */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/names.h"
#include "support/test.h"

static test_daemon d;

/* Serve name: accept one flow, echo one message, until killed. */
static void server(void *arg) {
        int reg = CHECK_OK(ipcf_register((const char *)arg, NULL));
        for (;;) {
                int p = ipcf_accept(reg, -1, NULL);
                CHECK(p >= 0);
                char buf[64];
                ssize_t n = ipcf_read(p, buf, sizeof(buf), 5000);
                CHECK(n > 0);
                CHECK_EQ(ipcf_write(p, buf, (size_t)n, 5000), n);
                ipcf_dealloc(p, NULL);
        }
}

TEST(closed_resolver_in_its_place) {
        test_daemon_start_bin(&d, "tests/ipcfd-closed-resolver",
                              "[name closed.*]\nallocate = *\nregister = *\nactivate = exit 3\n", NULL);
        ipcf_reason why;
        /* Its names: refused at once, with its reason. */
        CHECK_ERR(ipcf_alloc("closed.shop", NULL, 2000, &why), -ECONNREFUSED);
        CHECK(strcmp(why.text, "closed for the night") == 0);
        CHECK_EQ(why.code, IPCF_END_REFUSED);
        /* Before activation: the rule's program is never started (it would
         * fail the allocation with ENOEXEC). */
        CHECK_ERR(ipcf_alloc("closed.other", NULL, 2000, NULL), -ECONNREFUSED);
        /* After the registry: a registered name of its kind is reached. */
        pid_t s = test_fork(server, "closed.open");
        test_wait_for_name("closed.open", 5000);
        int p = CHECK_OK(ipcf_alloc("closed.open", NULL, 2000, NULL));
        CHECK_EQ(ipcf_write(p, "hi", 2, 1000), 2);
        char buf[8];
        CHECK_EQ(ipcf_read(p, buf, sizeof(buf), 2000), 2);
        CHECK_OK(ipcf_dealloc(p, NULL));
        /* Not its names: the next resolvers (nobody: ENOENT). */
        CHECK_ERR(ipcf_alloc("open.shop", NULL, 2000, NULL), -ENOENT);
        /* Not its role: a mailbox role goes by (no such mailbox: ENOENT). */
        CHECK_ERR(ipcf_mbox_open("closed.box", IPCF_MBOX_SEND, NULL, 2000), -ENOENT);
        kill(s, SIGKILL);
        test_wait(s, 5000);
        test_daemon_stop(&d);
}

/* The lines between two markers of a file, or NULL. */
static char *between(const char *path, const char *from, const char *to) {
        char *full = test_source_path(path);
        FILE *f = fopen(full, "r");
        free(full);
        if (!f)
                return NULL;
        static char text[1 << 16];
        size_t n = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
        text[n] = 0;
        char *a = strstr(text, from), *b = a ? strstr(a, to) : NULL;
        if (!a || !b)
                return NULL;
        return strndup(a, (size_t)(b - a) + strlen(to));
}

TEST(the_document_quotes_the_example) {
        /* The resolver function and its table, as the file has them. */
        const char *from = "static int closed_resolve(", *to = ".resolve = closed_resolve,";
        char *code = between("tests/daemons/closed-resolver.c", from, to);
        char *doc = between("docs/ARCHITECTURE.md", from, to);
        CHECK(code != NULL);
        CHECK(doc != NULL);
        CHECK(strcmp(code, doc) == 0);
        free(code);
        free(doc);
}
