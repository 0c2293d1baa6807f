/*
 * fuzz-ctlschema.c — libFuzzer target for the checker of requests against
 * the protocol schema (common/ctlschema.c): every request the daemon hands to
 * a handler went through ctl_args_parse(). The input is a control message
 * and, in its first byte, how many descriptors came with it.
 *
 * Invariants checked: nothing reads outside the input; a request that passes
 * has every REQUIRED attribute, every NAME attribute a valid name, every
 * attribute of its row well framed (u32/u64/fixed of the right length, a
 * string ending at its only NUL inside the message), and the typed getters
 * return what the wire says; a type without a row never passes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/ctlschema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        unsigned n_fds = data[0] % (CTL_FDS_MAX + 1);
        size--;
        /* The daemon parses out of its own buffer: copy so the bounds are exact. */
        uint8_t *buf = malloc(size ? size : 1);
        if (!buf)
                return 0;
        memcpy(buf, data + 1, size);
        ctl_msg m;
        ctl_args a;
        if (ctl_msg_parse(buf, size, &m) == 0) {
                int r = ctl_args_parse(&m, n_fds, &a);
                const ctl_req_spec *spec = ctl_req_spec_of(m.type);
                if (r != 0 && r != -EBADMSG && r != -EINVAL)
                        abort();
                if (!spec && r != -EBADMSG)
                        abort();
                if (r == 0) {
                        if (a.spec != spec || n_fds != spec->fds)
                                abort();
                        for (size_t i = 0; i < CTL_ROW_ARGS_MAX && spec->args[i].attr; i++) {
                                const ctl_arg_spec *as = &spec->args[i];
                                const ctl_attr_info *ai = &ctl_attr_table[as->attr];
                                if ((as->flags & CTL_ARG_REQUIRED) && !ctl_arg_has(&a, as->attr))
                                        abort();
                                if (!ctl_arg_has(&a, as->attr))
                                        continue;
                                const uint8_t *v = a.val[as->attr];
                                if (v < buf || v + a.len[as->attr] > buf + size)
                                        abort();
                                switch (ai->kind) {
                                case CTL_K_U32: {
                                        uint32_t x;
                                        if (a.len[as->attr] != 4 || ctl_get_u32(&m, as->attr, &x) != 0 ||
                                            x != ctl_arg_u32(&a, as->attr, ~x))
                                                abort();
                                        break;
                                }
                                case CTL_K_U64: {
                                        uint64_t x;
                                        if (a.len[as->attr] != 8 || ctl_get_u64(&m, as->attr, &x) != 0 ||
                                            x != ctl_arg_u64(&a, as->attr, ~x))
                                                abort();
                                        break;
                                }
                                case CTL_K_STR: {
                                        const char *s = ctl_arg_str(&a, as->attr);
                                        if (!s || strlen(s) + 1 != a.len[as->attr])
                                                abort();
                                        if ((as->flags & CTL_ARG_NAME) && !ctl_name_valid(s))
                                                abort();
                                        break;
                                }
                                case CTL_K_FIXED: {
                                        uint8_t tmp[512];
                                        if (ai->size > sizeof(tmp) || !ctl_arg_fixed(&a, as->attr, tmp, ai->size))
                                                abort();
                                        break;
                                }
                                default: abort();
                                }
                        }
                }
        }
        free(buf);
        return 0;
}
