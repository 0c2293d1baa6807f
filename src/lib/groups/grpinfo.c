/*
 * grpinfo.c — what the facility knows of groups and named segments: the
 * listing (GROUP_LIST, paged like LIST) and the members of one group.
 * Everything received is copied out of the reply; strings are cut to size.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "lib/core/lib.h"

/* Wire entry (little-endian, packed) to the public struct; the name is
 * copied bounded and stays NUL-terminated whatever the daemon sent. */
static void entry_from_wire(const struct ctl_group_entry_wire *w, ipcf_group_entry *e) {
        memset(e, 0, sizeof(*e));
        memcpy(e->name, w->name, IPCF_NAME_MAX);
        e->id = le64toh(w->id);
        e->size = le64toh(w->size);
        e->generation = le64toh(w->generation);
        e->kind = le32toh(w->kind);
        e->state = le32toh(w->state);
        e->members = le32toh(w->members);
        e->owner_uid = (uid_t)le32toh(w->owner_uid);
        e->creator_pid = (pid_t)le32toh(w->creator_pid);
        e->mode = le32toh(w->mode);
}

/* Grow *v (elements of size sz) to hold n + 1. */
static int grow(void **v, size_t *cap, size_t n, size_t sz) {
        if (n < *cap)
                return 0;
        size_t nc = *cap ? *cap * 2 : 16;
        void *p = realloc(*v, nc * sz);
        if (!p)
                return -ENOMEM;
        *v = p;
        *cap = nc;
        return 0;
}

/* Page through GROUP_LIST (LIST_SKIP = entries so far) until LIST_MORE is
 * 0; at most 1024 pages, so a confused daemon cannot keep us looping. */
int ipcf_group_list(ipcf_group_entry **ret_entries, size_t *ret_n) {
        if (!ret_entries || !ret_n)
                return -EINVAL;
        ipcf_group_entry *v = NULL;
        size_t n = 0, cap = 0;
        int r = 0;
        for (int page = 0; page < 1024; page++) {
                conn_call *c = conn_call_new(CTL_GROUP_LIST);
                if (!c) {
                        r = -ENOMEM;
                        break;
                }
                ctl_put_u32(&c->req, CTL_A_LIST_SKIP, (uint32_t)n);
                r = conn_call_run(c, NULL, 0);
                uint32_t more = 0;
                size_t cur = 0, got = 0;
                uint16_t t, len;
                const void *val;
                while (r == 0 && ctl_attr_next(&c->rep.msg, &cur, &t, &val, &len)) {
                        if (t != CTL_A_GROUP_ENTRY)
                                continue;
                        struct ctl_group_entry_wire w;
                        if (len != sizeof(w) || (r = grow((void **)&v, &cap, n, sizeof(*v))) < 0) {
                                r = r < 0 ? r : -EPROTO;
                                break;
                        }
                        memcpy(&w, val, sizeof(w));
                        entry_from_wire(&w, &v[n++]);
                        got++;
                }
                if (r == 0)
                        (void)ctl_get_u32(&c->rep.msg, CTL_A_LIST_MORE, &more);
                conn_call_free(c);
                if (r < 0 || !more || got == 0)
                        break;
        }
        if (r < 0) {
                free(v);
                return r;
        }
        *ret_entries = v;
        *ret_n = n;
        return 0;
}

/* One GROUP_LIST with NAME: the group's entry and one MEMBER_ENTRY per
 * member (identities stamped by the daemon from kernel credentials). */
int ipcf_group_members(const char *name, ipcf_peer_info *buf, size_t cap) {
        if (!ctl_name_valid(name) || (!buf && cap))
                return -EINVAL;
        conn_call *c = conn_call_new(CTL_GROUP_LIST);
        if (!c)
                return -ENOMEM;
        ctl_put_str(&c->req, CTL_A_NAME, name);
        int r = conn_call_run(c, NULL, 0);
        size_t cur = 0, count = 0;
        uint16_t t, len;
        const void *val;
        while (r == 0 && ctl_attr_next(&c->rep.msg, &cur, &t, &val, &len)) {
                if (t != CTL_A_MEMBER_ENTRY)
                        continue;
                struct ctl_member_entry_wire w;
                if (len != sizeof(w)) {
                        r = -EPROTO;
                        break;
                }
                memcpy(&w, val, sizeof(w));
                if (count < cap) {
                        memset(&buf[count], 0, sizeof(buf[count]));
                        memcpy(buf[count].name, w.name, IPCF_NAME_MAX);
                        buf[count].pid = (pid_t)le32toh(w.pid);
                        buf[count].uid = (uid_t)le32toh(w.uid);
                        buf[count].gid = (gid_t)le32toh(w.gid);
                }
                count++;
        }
        conn_call_free(c);
        return r < 0 ? r : (int)count;
}
