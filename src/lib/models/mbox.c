/*
 * mbox.c — mailboxes, the library's side (include/ipcf.h, docs/MODELS.md):
 * create/destroy are control requests; a handle is a flow to the daemon
 * opened with a sender or receiver role; messages travel as frames
 * (modelio.c).
 * Who may call: applications, any thread.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/modelwire.h"
#include "common/util.h"
#include "lib/core/lib.h"
#include "lib/models/models.h"

/* Zero fields are the daemon's defaults; it checks the limits. */
int ipcf_mbox_create(const char *name, const ipcf_mbox_opts *opts) {
        struct ctl_mbox_opts_wire w;
        memset(&w, 0, sizeof(w));
        if (opts) {
                if (opts->size && opts->size != sizeof(*opts))
                        return -EINVAL;
                w.flags = htole32(opts->flags);
                w.max_msgs = htole32(opts->max_msgs);
                w.max_bytes = htole64(opts->max_bytes);
                w.max_msg_size = htole32(opts->max_msg_size);
        }
        return conn_tell(CTL_MBOX_CREATE, name, CTL_A_MBOX_OPTS, &w, sizeof(w));
}

/* Returns how many messages the destroy discarded whose senders had left
 * (the reply's UNDELIVERED; a daemon without it: 0). */
int ipcf_mbox_destroy(const char *name) {
        if (!ctl_name_valid(name))
                return -EINVAL;
        conn_call *c = conn_call_new(CTL_MBOX_DESTROY);
        if (!c)
                return -ENOMEM;
        ctl_put_str(&c->req, CTL_A_NAME, name);
        int r = conn_call_run(c, NULL, 0);
        uint64_t n = 0;
        if (r >= 0 && ctl_get_u64(&c->rep.msg, CTL_A_UNDELIVERED, &n) == 0)
                r = (int)MIN(n, (uint64_t)INT_MAX);
        conn_call_free(c);
        return r;
}

/* A flow to the mailbox's name with the sender or receiver role. */
int ipcf_mbox_open(const char *name, int how, const ipcf_qos *qos, int timeout_ms) {
        if (how != IPCF_MBOX_SEND && how != IPCF_MBOX_RECV)
                return -EINVAL;
        return model_open(name, how == IPCF_MBOX_SEND ? CTL_ROLE_MBOX_SEND : CTL_ROLE_MBOX_RECV,
                          qos, timeout_ms);
}

/* Send; with a receipt asked, then wait (the rest of the same timeout) for
 * the daemon's MW_RECEIPT of this message number. */
ssize_t ipcf_mbox_send(int h, const void *buf, size_t len, int timeout_ms,
                       ipcf_receipt *ret_receipt) {
        uint64_t seq;
        uint64_t deadline = deadline_from_timeout(timeout_ms);
        if (ret_receipt)
                *ret_receipt = (ipcf_receipt){ 0 }; /* seq 0: nothing sent */
        ssize_t r = model_send(h, buf, len, ret_receipt ? MW_F_RECEIPT : 0, &seq, timeout_ms);
        if (r < 0 || !ret_receipt)
                return r;
        /* Sent: a wait for its receipt that fails leaves seq set (receiver 0). */
        ret_receipt->seq = seq;
        pid_t pid = 0;
        int t = timeout_ms < 0 ? -1 : deadline_poll_ms(deadline);
        if (timeout_ms > 0 && t == 0)
                return -ETIMEDOUT;
        int e = model_wait_receipt(h, seq, NULL, &pid, t);
        if (e < 0)
                return e;
        ret_receipt->receiver = pid;
        return r;
}

ssize_t ipcf_mbox_send_async(int h, const void *buf, size_t len, int timeout_ms,
                             uint64_t *ret_seq) {
        return model_send(h, buf, len, MW_F_RECEIPT, ret_seq, timeout_ms);
}

int ipcf_mbox_receipt(int h, int timeout_ms, ipcf_receipt *ret) {
        if (!ret || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        uint64_t seq = 0;
        pid_t pid = 0;
        int r = model_wait_receipt(h, 0, &seq, &pid, timeout_ms);
        if (r < 0)
                return r;
        ret->receiver = pid;
        ret->reserved = 0;
        ret->seq = seq;
        return 0;
}

ssize_t ipcf_mbox_recv(int h, void *buf, size_t cap, int timeout_ms, ipcf_peer_info *ret_sender) {
        return model_recv(h, buf, cap, ret_sender, timeout_ms);
}

int64_t ipcf_mbox_undelivered(int h) { return model_undelivered(h); }

/* MODEL_LIST, page by page (LIST_SKIP = entries so far) until no LIST_MORE.
 * *ret is the caller's (ipcf_free()); untouched on failure. */
int ipcf_model_list(ipcf_model_entry **ret, size_t *ret_n) {
        if (!ret || !ret_n)
                return -EINVAL;
        ipcf_model_entry *v = NULL;
        size_t n = 0, cap = 0;
        uint32_t skip = 0;
        int r;
        for (;;) {
                conn_call *c = conn_call_new(CTL_MODEL_LIST);
                if (!c) {
                        r = -ENOMEM;
                        break;
                }
                ctl_put_u32(&c->req, CTL_A_LIST_SKIP, skip);
                r = conn_call_run(c, NULL, 0);
                uint32_t more = 0;
                size_t cur = 0;
                uint16_t type, alen;
                const void *val;
                while (r >= 0 && ctl_attr_next(&c->rep.msg, &cur, &type, &val, &alen)) {
                        if (type != CTL_A_MODEL_ENTRY)
                                continue;
                        struct ctl_model_entry_wire w;
                        if (alen != sizeof(w)) {
                                r = -EPROTO;
                                break;
                        }
                        memcpy(&w, val, sizeof(w));
                        if (n == cap) {
                                cap = cap ? 2 * cap : 16;
                                ipcf_model_entry *nv = realloc(v, cap * sizeof(*nv));
                                if (!nv) {
                                        r = -ENOMEM;
                                        break;
                                }
                                v = nv;
                        }
                        ipcf_model_entry *e = &v[n++];
                        memset(e, 0, sizeof(*e));
                        memcpy(e->name, w.name, IPCF_NAME_MAX);
                        e->name[IPCF_NAME_MAX] = 0;
                        e->kind = (int)le32toh(w.kind);
                        e->owner_uid = le32toh(w.owner_uid);
                        e->senders = le32toh(w.senders);
                        e->receivers = le32toh(w.receivers);
                        e->queued = le32toh(w.queued);
                        e->flags = le32toh(w.flags);
                        e->msgs_in = le64toh(w.msgs_in);
                        e->msgs_out = le64toh(w.msgs_out);
                        e->dropped = le64toh(w.dropped);
                        skip++;
                }
                if (r >= 0)
                        (void)ctl_get_u32(&c->rep.msg, CTL_A_LIST_MORE, &more);
                conn_call_free(c);
                if (r < 0 || !more)
                        break;
        }
        if (r < 0) {
                free(v);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}
