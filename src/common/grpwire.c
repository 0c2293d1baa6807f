/*
 * grpwire.c — parsing of group requests (see grpwire.h). Walks every
 * attribute once; never reads outside the parsed message.
 */
#include "common/grpwire.h"

#include <errno.h>
#include <string.h>

#include "common/grpshm.h"
#include "common/util.h"

int grpwire_parse_name(const ctl_msg *m, const char **ret) {
        int r = ctl_get_str(m, CTL_A_NAME, CTL_MSG_MAX, ret);
        if (r == -EBADMSG)
                return r;
        return r < 0 || !ctl_name_valid(*ret) ? -EINVAL : 0;
}

int grpwire_parse_create(const ctl_msg *m, grpwire_create *ret) {
        memset(ret, 0, sizeof(*ret));
        bool bad = false; /* a bad value: reported after the framing checks */
        int r = grpwire_parse_name(m, &ret->name);
        if (r == -EBADMSG)
                return r;
        bad |= r < 0;
        r = ctl_get_u64(m, CTL_A_SHM_SIZE, &ret->size);
        if (r == -EBADMSG)
                return r;
        bad |= r < 0 || ret->size == 0 || ret->size > GRPSHM_SIZE_MAX;
        r = ctl_get_u32(m, CTL_A_GROUP_FLAGS, &ret->flags);
        if (r == -EBADMSG)
                return r;
        bad |= ret->flags != 0;
        size_t cur = 0;
        uint16_t t, len;
        const void *v;
        while (ctl_attr_next(m, &cur, &t, &v, &len)) {
                if (t == CTL_A_ALLOW_UID || t == CTL_A_ALLOW_GID) {
                        if (len != 4)
                                return -EBADMSG;
                        uint32_t x;
                        memcpy(&x, v, 4);
                        x = le32toh(x);
                        uint32_t *arr = t == CTL_A_ALLOW_UID ? ret->uids : ret->gids;
                        unsigned *n = t == CTL_A_ALLOW_UID ? &ret->n_uids : &ret->n_gids;
                        if (*n == GROUP_ALLOW_MAX)
                                bad = true;
                        else
                                arr[(*n)++] = x;
                } else if (t == CTL_A_ALLOW_NAME) {
                        const char *s = v;
                        if (len == 0 || memchr(s, 0, len) != s + len - 1)
                                return -EBADMSG;
                        if (!ctl_name_valid(s) || ret->n_names == GROUP_ALLOW_MAX)
                                bad = true;
                        else
                                ret->names[ret->n_names++] = s;
                }
        }
        return bad ? -EINVAL : 0;
}
