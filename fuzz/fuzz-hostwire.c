/*
 * fuzz-hostwire.c — libFuzzer target for the control messages a remote
 * daemon sends (common/hostwire.c). Any input either parses into a message
 * whose every string is a NUL-terminated printable one within its field and
 * whose qos passes the local rules, or is refused; a parsed message builds
 * back to exactly the input (the format has one encoding), and never crashes,
 * leaks or reads outside the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/ctl.h"
#include "common/hostwire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_str(const char *s, size_t cap) {
        size_t n = strnlen(s, cap);
        if (n == cap)
                abort();
        for (size_t i = 0; i < n; i++)
                if (s[i] < ' ' || s[i] > '~')
                        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* an exact-size copy: the parser must use size only */
        uint8_t *in = malloc(size ? size : 1);
        if (!in)
                return 0;
        memcpy(in, data, size);
        hw_msg m;
        if (hw_parse(in, size, &m) == 0) {
                check_str(m.name, sizeof(m.name));
                check_str(m.user, sizeof(m.user));
                check_str(m.reason, sizeof(m.reason));
                check_str(m.who.prog, sizeof(m.who.prog));
                if (m.type == HW_ALLOC || m.type == HW_ACCEPT) {
                        ipcf_qos q = m.qos;
                        if (ctl_qos_normalize(&q) < 0 || memcmp(&q, &m.qos, sizeof(q)) != 0)
                                abort();
                }
                uint8_t out[HW_MSG_MAX];
                int n = hw_build(&m, out, sizeof(out));
                /* a qos the parser filled with defaults encodes differently */
                if (n < 0 || (m.type != HW_ALLOC && m.type != HW_ACCEPT &&
                              ((size_t)n != size || memcmp(out, in, size) != 0)))
                        abort();
                hw_msg again;
                if (hw_parse(out, (size_t)n, &again) != 0 || memcmp(&again, &m, sizeof(m)) != 0)
                        abort();
        }
        free(in);
        return 0;
}
