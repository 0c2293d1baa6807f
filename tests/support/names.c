/*
 * names.c — see names.h.
 */
#include "support/names.h"

#include <unistd.h>

#include "ipcf.h"
#include "support/test.h"

/* Whether name is registered now. */
static bool registered(const char *name) {
        ipcf_listing *l;
        CHECK_OK(ipcf_list(&l));
        bool found = false;
        for (size_t k = 0; k < l->n_names; k++)
                found |= strcmp(l->names[k].name, name) == 0;
        ipcf_free(l);
        return found;
}

void test_wait_for_name_gone(const char *name, int timeout_ms) {
        uint64_t deadline = test_now_ms() + (uint64_t)timeout_ms;
        do {
                if (!registered(name))
                        return;
                usleep(5000);
        } while (test_now_ms() < deadline);
        test_fail(__FILE__, __LINE__, "%s was still registered after %d ms", name, timeout_ms);
}

void test_wait_for_name(const char *name, int timeout_ms) {
        uint64_t deadline = test_now_ms() + (uint64_t)timeout_ms;
        do {
                if (registered(name))
                        return;
                usleep(5000);
        } while (test_now_ms() < deadline);
        test_fail(__FILE__, __LINE__, "%s was not registered within %d ms", name, timeout_ms);
}
