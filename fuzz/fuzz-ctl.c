/*
 * fuzz-ctl.c — libFuzzer target for the control-protocol parser: every byte
 * string a client can send the daemon goes through ctl_msg_parse(), then
 * through every typed getter the daemon uses, then qos normalisation and the
 * flow layout of a parsed QOS attribute. The invariant checked (by the
 * sanitizers) is that none of it reads outside the input or crashes, and that
 * what the getters return is within what they promise.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/ctl.h"
#include "common/ring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_qos(const void *val) {
        struct ctl_qos_wire w;
        ipcf_qos q;
        flow_layout l;
        memcpy(&w, val, sizeof(w));
        ctl_qos_from_wire(&w, &q);
        if (ctl_qos_normalize(&q) == 0) {
                /* A normalised qos is within the documented limits... */
                if (q.capacity > IPCF_CAPACITY_UNBOUNDED || q.max_msg_size == 0)
                        abort();
                /* ...and round-trips through the wire. */
                ctl_qos_to_wire(&q, &w);
                ipcf_qos q2;
                ctl_qos_from_wire(&w, &q2);
                if (memcmp(&q, &q2, sizeof(q)) != 0)
                        abort();
                if (flow_layout_for(&q, &l) == 0 &&
                    (l.total < FLOW_DATA_OFF + 2 * (uint64_t)RING_MIN || (l.ring_size & (l.ring_size - 1))))
                        abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ctl_msg m;
        /* The daemon parses out of its own buffer: copy so the fuzzer's
         * buffer bounds are exact. */
        uint8_t *buf = malloc(size ? size : 1);
        if (!buf)
                return 0;
        memcpy(buf, data, size);
        if (ctl_msg_parse(buf, size, &m) == 0) {
                /* Every attribute the daemon reads, with every getter. */
                for (uint16_t t = 0; t < CTL_A_TYPE_MAX_ + 2; t++) {
                        uint32_t u32;
                        uint64_t u64;
                        const char *s;
                        ctl_get_u32(&m, t, &u32);
                        ctl_get_u64(&m, t, &u64);
                        if (ctl_get_str(&m, t, CTL_MSG_MAX, &s) == 0) {
                                size_t n = strlen(s); /* must be terminated inside buf */
                                if ((const uint8_t *)s + n >= buf + size)
                                        abort();
                                ctl_name_valid(s);
                        }
                        if (ctl_get_str(&m, t, IPCF_NAME_MAX, &s) == 0 && strlen(s) > IPCF_NAME_MAX)
                                abort();
                }
                struct ctl_qos_wire qw;
                struct ctl_peer_wire pw;
                struct ctl_name_entry_wire ne;
                struct ctl_flow_entry_wire fe;
                if (ctl_get_fixed(&m, CTL_A_QOS, &qw, sizeof(qw)) == 0)
                        check_qos(&qw);
                ctl_get_fixed(&m, CTL_A_PEER, &pw, sizeof(pw));
                ctl_get_fixed(&m, CTL_A_NAME_ENTRY, &ne, sizeof(ne));
                ctl_get_fixed(&m, CTL_A_FLOW_ENTRY, &fe, sizeof(fe));
                /* Mailboxes, groups, notifications (docs/MODELS.md). */
                struct ctl_mbox_opts_wire mo;
                struct ctl_mcast_opts_wire co;
                struct ctl_model_entry_wire me;
                ctl_get_fixed(&m, CTL_A_MBOX_OPTS, &mo, sizeof(mo));
                ctl_get_fixed(&m, CTL_A_MCAST_OPTS, &co, sizeof(co));
                ctl_get_fixed(&m, CTL_A_MODEL_ENTRY, &me, sizeof(me));
                /* Iteration visits each attribute once, inside the message. */
                size_t cur = 0, prev = 0, count = 0;
                uint16_t type, len;
                const void *val;
                while (ctl_attr_next(&m, &cur, &type, &val, &len)) {
                        if (cur <= prev || (const uint8_t *)val + len > buf + size)
                                abort();
                        prev = cur;
                        if (++count > size)
                                abort();
                        if (type == CTL_A_QOS && len == sizeof(struct ctl_qos_wire))
                                check_qos(val);
                }
        }
        /* Any 24..40 bytes also make a candidate wire qos on their own. */
        if (size >= sizeof(struct ctl_qos_wire))
                check_qos(buf);
        free(buf);
        return 0;
}
