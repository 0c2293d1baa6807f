/*
 * fuzz-group.c — libFuzzer target for the shared-memory group requests:
 * every byte string a client can send goes through ctl_msg_parse(), then
 * through the daemon's group parsers (grpwire_parse_create, _name) and the
 * fixed listing structs the library reads; then the values a member takes
 * from outside when it joins and maps: the member id of the JOIN reply and
 * the size published in the control page (against a file size), decoded by
 * grpshm_member_decode / grpshm_map_size. Invariants checked: nothing is
 * read outside the input, and what the parsers return is within what they
 * promise (counts bounded, names valid and inside the message, sizes in
 * range: a mapped size is whole pages, backed by the file, at most
 * GRPSHM_SIZE_MAX; a decoded member id makes a valid lock token).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/ctl.h"
#include "common/grplock.h"
#include "common/grpshm.h"
#include "common/grpwire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_str(const char *s, const uint8_t *buf, size_t size) {
        size_t n = strlen(s);
        if ((const uint8_t *)s < buf || (const uint8_t *)s + n >= buf + size || !ctl_name_valid(s))
                abort();
}

/* The first 24 bytes, if there are that many, as a member id, a published
 * size and a file size. */
static void check_member_values(const uint8_t *data, size_t size) {
        uint64_t v[3];
        if (size < sizeof(v))
                return;
        memcpy(v, data, sizeof(v));
        uint32_t slot, serial;
        if (grpshm_member_decode(v[0], &slot, &serial) == 0) {
                if (grplock_token(slot, serial, 1) == 0 || grpshm_member_id(slot, serial) != v[0])
                        abort();
        }
        for (uint64_t page = 4096; page <= 65536; page *= 16) {
                uint64_t m = grpshm_map_size(v[1], v[2], page);
                if (m % page || m > GRPSHM_SIZE_MAX || m > v[1] ||
                    (m && m > v[2] - GRPSHM_CTL_SIZE) || (m && v[2] <= GRPSHM_CTL_SIZE))
                        abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        check_member_values(data, size);
        uint8_t *buf = malloc(size ? size : 1);
        if (!buf)
                return 0;
        memcpy(buf, data, size);
        ctl_msg m;
        if (ctl_msg_parse(buf, size, &m) == 0) {
                grpwire_create w;
                int r = grpwire_parse_create(&m, &w);
                if (r != 0 && r != -EBADMSG && r != -EINVAL)
                        abort();
                if (r == 0) {
                        check_str(w.name, buf, size);
                        if (w.size == 0 || w.size > GRPSHM_SIZE_MAX || w.flags ||
                            w.n_names > GROUP_ALLOW_MAX || w.n_uids > GROUP_ALLOW_MAX ||
                            w.n_gids > GROUP_ALLOW_MAX)
                                abort();
                        for (unsigned i = 0; i < w.n_names; i++)
                                check_str(w.names[i], buf, size);
                }
                const char *name;
                r = grpwire_parse_name(&m, &name);
                if (r == 0)
                        check_str(name, buf, size);
                else if (r != -EBADMSG && r != -EINVAL)
                        abort();
                /* The listing structs, as the library copies them. */
                struct ctl_group_entry_wire ge;
                struct ctl_member_entry_wire me;
                size_t cur = 0;
                uint16_t t, len;
                const void *v;
                while (ctl_attr_next(&m, &cur, &t, &v, &len)) {
                        if (t == CTL_A_GROUP_ENTRY && len == sizeof(ge))
                                memcpy(&ge, v, sizeof(ge));
                        if (t == CTL_A_MEMBER_ENTRY && len == sizeof(me))
                                memcpy(&me, v, sizeof(me));
                }
                uint64_t u;
                ctl_get_u64(&m, CTL_A_GROUP_ID, &u);
                ctl_get_u64(&m, CTL_A_MEMBER_ID, &u);
        }
        free(buf);
        return 0;
}
