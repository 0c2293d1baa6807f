/*
 * ctlschema.c — the control protocol's tables and the checker of a request
 * against its row (see ctlschema.h). A new request is one row here (and its
 * type in ctl.h); the daemon's module that serves it registers a handler for
 * the type (src/daemon/core/dispatch.h). Untrusted input: fuzzed by
 * fuzz/fuzz-ctlschema.c.
 */
#include "common/ctlschema.h"

#include <errno.h>
#include <string.h>

#include "common/flowmem.h"
#include "common/util.h"

#define U32(n) { #n, CTL_K_U32, 4 }
#define U64(n) { #n, CTL_K_U64, 8 }
#define STR(n) { #n, CTL_K_STR, 0 }
#define FIXED(n, t) { #n, CTL_K_FIXED, sizeof(t) }

const ctl_attr_info ctl_attr_table[CTL_A_TYPE_MAX_] = {
        [CTL_A_VERSION] = U32(VERSION),
        [CTL_A_PID] = U32(PID),
        [CTL_A_NAME] = STR(NAME),
        [CTL_A_REG_FLAGS] = U32(REG_FLAGS),
        [CTL_A_BACKLOG] = U32(BACKLOG),
        [CTL_A_REG_ID] = U64(REG_ID),
        [CTL_A_QOS] = FIXED(QOS, struct ctl_qos_wire),
        [CTL_A_TIMEOUT_MS] = U32(TIMEOUT_MS),
        [CTL_A_ALLOC_ID] = U64(ALLOC_ID),
        [CTL_A_REQ_ID] = U64(REQ_ID),
        [CTL_A_REASON] = STR(REASON),
        [CTL_A_FLOW_ID] = U64(FLOW_ID),
        [CTL_A_ERRNO] = U32(ERRNO),
        [CTL_A_END_CODE] = U32(END_CODE),
        [CTL_A_PEER] = FIXED(PEER, struct ctl_peer_wire),
        [CTL_A_PEER_NAME] = STR(PEER_NAME),
        [CTL_A_SIDE] = U32(SIDE),
        [CTL_A_SHM_SIZE] = U64(SHM_SIZE),
        [CTL_A_UPTIME_MS] = U64(UPTIME_MS),
        [CTL_A_NAME_ENTRY] = FIXED(NAME_ENTRY, struct ctl_name_entry_wire),
        [CTL_A_FLOW_ENTRY] = FIXED(FLOW_ENTRY, struct ctl_flow_entry_wire),
        [CTL_A_LIST_SKIP] = U32(LIST_SKIP),
        [CTL_A_LIST_MORE] = U32(LIST_MORE),
        [CTL_A_GROUP_ID] = U64(GROUP_ID),
        [CTL_A_MEMBER_ID] = U64(MEMBER_ID),
        [CTL_A_GROUP_FLAGS] = U32(GROUP_FLAGS),
        [CTL_A_ALLOW_NAME] = STR(ALLOW_NAME),
        [CTL_A_ALLOW_UID] = U32(ALLOW_UID),
        [CTL_A_ALLOW_GID] = U32(ALLOW_GID),
        [CTL_A_GROUP_ENTRY] = FIXED(GROUP_ENTRY, struct ctl_group_entry_wire),
        [CTL_A_MEMBER_ENTRY] = FIXED(MEMBER_ENTRY, struct ctl_member_entry_wire),
        [CTL_A_SHM_FLAGS] = U32(SHM_FLAGS),
        [CTL_A_SHM_MODE] = U32(SHM_MODE),
        [CTL_A_EVENT_KIND] = U32(EVENT_KIND),
        [CTL_A_EVENT_LOST] = U32(EVENT_LOST),
        [CTL_A_MBOX_OPTS] = FIXED(MBOX_OPTS, struct ctl_mbox_opts_wire),
        [CTL_A_MCAST_OPTS] = FIXED(MCAST_OPTS, struct ctl_mcast_opts_wire),
        [CTL_A_MODEL_ENTRY] = FIXED(MODEL_ENTRY, struct ctl_model_entry_wire),
        [CTL_A_ROLE] = U32(ROLE),
        [CTL_A_HOST_SELF] = STR(HOST_SELF),
        [CTL_A_HOST_KEY] = STR(HOST_KEY),
        [CTL_A_HOST_ENTRY] = FIXED(HOST_ENTRY, struct ctl_host_entry_wire),
        [CTL_A_DIR_HEALTH] = FIXED(DIR_HEALTH, struct ctl_dir_health_wire),
        [CTL_A_DIR_RECORD] = FIXED(DIR_RECORD, struct ctl_dir_record_wire),
        [CTL_A_DIR_ATTRS] = STR(DIR_ATTRS),
        [CTL_A_FLOW_HOST] = FIXED(FLOW_HOST, struct ctl_flow_host_wire),
        [CTL_A_UNDELIVERED] = U64(UNDELIVERED),
        [CTL_A_PEER_HOST] = STR(PEER_HOST),
        [CTL_A_MONITOR] = FIXED(MONITOR, struct ctl_monitor_wire),
        [CTL_A_MONITOR_FLAGS] = U32(MONITOR_FLAGS),
        [CTL_A_MONITOR_DGRAM] = FIXED(MONITOR_DGRAM, struct ctl_monitor_dgram_wire),
};

#define REQ CTL_ARG_REQUIRED
#define NAMED (CTL_ARG_REQUIRED | CTL_ARG_NAME) /* a required, valid ipcf name */
#define REP CTL_ARG_REPEAT

/* The requests. Where an attribute a handler needs is not REQUIRED here, the
 * handler's own answer for its absence comes first by design: a missing id
 * finds nothing (ENOENT: ids start at 1); GROUP_RESIZE checks SHM_SIZE only
 * after the group was found and may be controlled (ENOENT, EPERM first). */
static const ctl_req_spec rows[] = {
        { CTL_HELLO, "HELLO", 0, 0, CTL_OK,
          { { CTL_A_VERSION, 0 } },
          { CTL_A_VERSION, CTL_A_PID } },
        { CTL_REGISTER, "REGISTER", 0, 1, CTL_OK,
          { { CTL_A_NAME, NAMED }, { CTL_A_REG_FLAGS, 0 }, { CTL_A_BACKLOG, 0 } },
          { CTL_A_REG_ID } },
        { CTL_UNREGISTER, "UNREGISTER", 0, 0, CTL_OK,
          { { CTL_A_REG_ID, 0 } },
          { 0 } },
        { CTL_ALLOC, "ALLOC", 1, 0, CTL_OK,
          { { CTL_A_NAME, NAMED }, { CTL_A_QOS, 0 }, { CTL_A_TIMEOUT_MS, 0 }, { CTL_A_ROLE, 0 } },
          { CTL_A_ALLOC_ID } },
        { CTL_ACCEPT, "ACCEPT", 0, FLOW_SIDE_FDS, CTL_FLOW,
          { { CTL_A_REG_ID, REQ }, { CTL_A_REQ_ID, REQ } },
          { CTL_A_FLOW_ID, CTL_A_SIDE, CTL_A_QOS, CTL_A_SHM_SIZE, CTL_A_PEER, CTL_A_PEER_NAME,
            CTL_A_PEER_HOST } },
        { CTL_REFUSE, "REFUSE", 0, 0, CTL_OK,
          { { CTL_A_REG_ID, REQ }, { CTL_A_REQ_ID, REQ }, { CTL_A_REASON, 0 } },
          { 0 } },
        { CTL_DEALLOC, "DEALLOC", 0, 0, CTL_OK,
          { { CTL_A_FLOW_ID, 0 }, { CTL_A_SIDE, 0 }, { CTL_A_REASON, 0 } },
          { 0 } },
        { CTL_LIST, "LIST", 0, 0, CTL_OK,
          { { CTL_A_LIST_SKIP, 0 } },
          { CTL_A_PID, CTL_A_UPTIME_MS, CTL_A_NAME_ENTRY, CTL_A_FLOW_ENTRY, CTL_A_FLOW_HOST,
            CTL_A_LIST_MORE } },
        { CTL_GROUP_CREATE, "GROUP_CREATE", 0, 0, CTL_OK,
          { { CTL_A_NAME, NAMED }, { CTL_A_SHM_SIZE, REQ }, { CTL_A_GROUP_FLAGS, 0 },
            { CTL_A_ALLOW_NAME, REP }, { CTL_A_ALLOW_UID, REP }, { CTL_A_ALLOW_GID, REP } },
          { CTL_A_GROUP_ID } },
        { CTL_GROUP_JOIN, "GROUP_JOIN", 0, 2, CTL_OK,
          { { CTL_A_NAME, NAMED } },
          { CTL_A_GROUP_ID, CTL_A_MEMBER_ID, CTL_A_SHM_SIZE } },
        { CTL_GROUP_EXIT, "GROUP_EXIT", 0, 0, CTL_OK,
          { { CTL_A_MEMBER_ID, 0 } },
          { 0 } },
        { CTL_GROUP_DISSOLVE, "GROUP_DISSOLVE", 0, 0, CTL_OK,
          { { CTL_A_NAME, NAMED } },
          { 0 } },
        { CTL_GROUP_RESIZE, "GROUP_RESIZE", 0, 0, CTL_OK,
          { { CTL_A_NAME, NAMED }, { CTL_A_SHM_SIZE, 0 } },
          { 0 } },
        { CTL_GROUP_LIST, "GROUP_LIST", 0, 0, CTL_OK,
          { { CTL_A_NAME, 0 }, { CTL_A_LIST_SKIP, 0 } },
          { CTL_A_GROUP_ENTRY, CTL_A_MEMBER_ENTRY, CTL_A_LIST_MORE } },
        { CTL_SHM_OPEN, "SHM_OPEN", 0, 1, CTL_OK,
          { { CTL_A_NAME, NAMED }, { CTL_A_SHM_FLAGS, 0 }, { CTL_A_SHM_MODE, 0 } },
          { CTL_A_GROUP_ID } },
        { CTL_SHM_UNLINK, "SHM_UNLINK", 0, 0, CTL_OK,
          { { CTL_A_NAME, NAMED } },
          { 0 } },
        { CTL_NOTIFY_OPEN, "NOTIFY_OPEN", 0, 1, CTL_OK,
          { { 0 } },
          { 0 } },
        { CTL_WATCH, "WATCH", 0, 0, CTL_OK,
          { { CTL_A_NAME, NAMED } },
          { 0 } },
        { CTL_UNWATCH, "UNWATCH", 0, 0, CTL_OK,
          { { CTL_A_NAME, NAMED } },
          { 0 } },
        { CTL_MBOX_CREATE, "MBOX_CREATE", 0, 0, CTL_OK,
          { { CTL_A_NAME, NAMED }, { CTL_A_MBOX_OPTS, 0 } },
          { 0 } },
        { CTL_MBOX_DESTROY, "MBOX_DESTROY", 0, 0, CTL_OK,
          { { CTL_A_NAME, NAMED } },
          { CTL_A_UNDELIVERED } },
        { CTL_MCAST_CREATE, "MCAST_CREATE", 0, 0, CTL_OK,
          { { CTL_A_NAME, NAMED }, { CTL_A_MCAST_OPTS, 0 } },
          { 0 } },
        { CTL_MCAST_DESTROY, "MCAST_DESTROY", 0, 0, CTL_OK,
          { { CTL_A_NAME, NAMED } },
          { 0 } },
        { CTL_MODEL_LIST, "MODEL_LIST", 0, 0, CTL_OK,
          { { CTL_A_LIST_SKIP, 0 } },
          { CTL_A_MODEL_ENTRY, CTL_A_LIST_MORE } },
        { CTL_HOSTS, "HOSTS", 0, 0, CTL_OK,
          { { 0, 0 } },
          { CTL_A_HOST_SELF, CTL_A_HOST_KEY, CTL_A_HOST_ENTRY, CTL_A_DIR_HEALTH, CTL_A_DIR_ATTRS } },
        { CTL_MONITOR_OPEN, "MONITOR_OPEN", 0, 1, CTL_OK,
          { { CTL_A_MONITOR_FLAGS, 0 } },
          { 0 } },
        { CTL_DIR_LIST, "DIR_LIST", 0, 0, CTL_OK,
          { { CTL_A_LIST_SKIP, 0 } },
          { CTL_A_DIR_HEALTH, CTL_A_DIR_RECORD, CTL_A_DIR_ATTRS, CTL_A_LIST_MORE } },
        { CTL_REQ_CHECK, "REQ_CHECK", 0, 0, CTL_OK,
          { { CTL_A_REG_ID, REQ }, { CTL_A_REQ_ID, REQ } },
          { 0 } },
};

const ctl_req_spec *ctl_req_spec_of(uint16_t type) {
        for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
                if (rows[i].type == type)
                        return &rows[i];
        return NULL;
}

/* Is one occurrence of attr well formed for its kind? */
static bool attr_framed(uint16_t attr, const void *val, uint16_t len) {
        const ctl_attr_info *ai = &ctl_attr_table[attr];
        switch (ai->kind) {
        case CTL_K_U32: return len == 4;
        case CTL_K_U64: return len == 8;
        case CTL_K_FIXED: return len == ai->size;
        case CTL_K_STR: /* exactly one NUL, at the end */
                return len > 0 && memchr(val, 0, len) == (const char *)val + len - 1;
        default: return false;
        }
}

/* The flags of attr in spec's row, or -1 if the row does not name it. */
static int row_flags(const ctl_req_spec *spec, uint16_t attr) {
        for (size_t i = 0; i < CTL_ROW_ARGS_MAX && spec->args[i].attr; i++)
                if (spec->args[i].attr == attr)
                        return spec->args[i].flags;
        return -1;
}

int ctl_args_parse(const ctl_msg *m, unsigned n_fds, ctl_args *ret) {
        memset(ret, 0, sizeof(*ret));
        const ctl_req_spec *spec = ctl_req_spec_of(m->type);
        if (!spec || n_fds != spec->fds)
                return -EBADMSG;
        ret->spec = spec;
        /* 1. Framing: one walk over the message. */
        size_t cur = 0;
        uint16_t t, len;
        const void *v;
        while (ctl_attr_next(m, &cur, &t, &v, &len)) {
                if (t >= CTL_A_TYPE_MAX_)
                        continue;
                int fl = row_flags(spec, t);
                if (fl < 0)
                        continue;
                bool first = !ret->val[t];
                if (!first && !(fl & CTL_ARG_REPEAT))
                        continue;
                if (!attr_framed(t, v, len))
                        return -EBADMSG;
                if (first) {
                        ret->val[t] = v;
                        ret->len[t] = len;
                }
        }
        /* 2. Values. */
        for (size_t i = 0; i < CTL_ROW_ARGS_MAX && spec->args[i].attr; i++) {
                const ctl_arg_spec *a = &spec->args[i];
                if ((a->flags & CTL_ARG_REQUIRED) && !ret->val[a->attr])
                        return -EINVAL;
                if ((a->flags & CTL_ARG_NAME) && ret->val[a->attr] && !ctl_name_valid(ret->val[a->attr]))
                        return -EINVAL;
        }
        return 0;
}

bool ctl_arg_has(const ctl_args *a, uint16_t attr) {
        return attr < CTL_A_TYPE_MAX_ && a->val[attr];
}

uint32_t ctl_arg_u32(const ctl_args *a, uint16_t attr, uint32_t dflt) {
        uint32_t v;
        if (!ctl_arg_has(a, attr) || a->len[attr] != 4)
                return dflt;
        memcpy(&v, a->val[attr], 4);
        return le32toh(v);
}

uint64_t ctl_arg_u64(const ctl_args *a, uint16_t attr, uint64_t dflt) {
        uint64_t v;
        if (!ctl_arg_has(a, attr) || a->len[attr] != 8)
                return dflt;
        memcpy(&v, a->val[attr], 8);
        return le64toh(v);
}

const char *ctl_arg_str(const ctl_args *a, uint16_t attr) {
        if (!ctl_arg_has(a, attr) || ctl_attr_table[attr].kind != CTL_K_STR)
                return NULL;
        return a->val[attr];
}

bool ctl_arg_fixed(const ctl_args *a, uint16_t attr, void *out, size_t size) {
        if (!ctl_arg_has(a, attr) || a->len[attr] != size)
                return false;
        memcpy(out, a->val[attr], size);
        return true;
}
