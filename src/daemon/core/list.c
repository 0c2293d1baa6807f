/*
 * list.c — the LIST request: daemon pid and uptime, then one NAME_ENTRY per
 * registration and one FLOW_ENTRY per flow the client may see.
 *
 * VISIBILITY: root and the daemon's uid see everything; any other uid sees
 * the registrations it holds and the flows it is a party to (either side).
 * BOUND: the reply is one control message (CTL_MSG_MAX: about 440 names, or
 * 270 flows). PAGING: the request's LIST_SKIP skips that many visible
 * entries (names first, then flows); a reply that had to leave entries out
 * says LIST_MORE = 1, and the client asks again with LIST_SKIP increased by
 * what it received. Entries are in creation order, so a page boundary moves
 * only when objects come or go between two requests (a snapshot across pages
 * is not promised).
 */
#include "daemon/core/list.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "daemon/core/client.h"
#include "daemon/flows/flow.h"
#include "daemon/names/registry.h"

/* Would an attribute of len bytes still fit, leaving room for LIST_MORE (8)? */
static bool list_fits(const ctl_builder *b, size_t len) {
        return b->err == 0 && ((4 + len + 3) & ~(size_t)3) + 8 <= CTL_MSG_MAX - b->len;
}

/* One OK message with everything c may see. Counters are read from shared
 * memory the flow's processes write: they are reported as found (relaxed
 * loads; ring_queued() clamps), never trusted for anything else. */
int list_handle(client *c, const ctl_msg *m) {
        ipcfd *d = c->d;
        bool all = client_is_privileged(c);
        ctl_builder *b = malloc(sizeof(*b));
        if (!b)
                return client_reply_error(c, m->seq, -ENOMEM), 0;

        uint32_t skip = 0, more = 0;
        (void)ctl_get_u32(m, CTL_A_LIST_SKIP, &skip);
        ctl_begin(b, CTL_OK, m->seq);
        ctl_put_u32(b, CTL_A_PID, (uint32_t)d->pid);
        ctl_put_u64(b, CTL_A_UPTIME_MS, (now_ns() - d->start_ns) / 1000000u);

        /* Names first, then flows; whatever does not fit is left out. */
        dlist_for_each(pos, &d->regs) {
                reg *g = dlist_entry(pos, reg, link);
                if (!all && g->owner->cred.uid != c->cred.uid)
                        continue;
                struct ctl_name_entry_wire e;
                memset(&e, 0, sizeof(e));
                str_copy(e.name, g->name, sizeof(e.name));
                e.pid = htole32((uint32_t)g->owner->cred.pid);
                e.uid = htole32(g->owner->cred.uid);
                e.flows = htole32(g->flows);
                e.pending = htole32(g->pending);
                if (skip) {
                        skip--;
                        continue;
                }
                if (!list_fits(b, sizeof(e))) {
                        more = 1;
                        break;
                }
                ctl_put(b, CTL_A_NAME_ENTRY, &e, sizeof(e));
        }
        dlist_for_each(pos, &d->flows) {
                flow *f = dlist_entry(pos, flow, link);
                if (more)
                        break;
                if (!all && f->side[0].cred.uid != c->cred.uid && f->side[1].cred.uid != c->cred.uid)
                        continue;
                if (skip) {
                        skip--;
                        continue;
                }
                struct ctl_flow_entry_wire e;
                uint64_t v[6];
                memset(&e, 0, sizeof(e));
                e.id = htole64(f->node.id);
                str_copy(e.name, f->name, sizeof(e.name));
                e.pid_a = htole32((uint32_t)f->side[0].cred.pid);
                e.pid_b = htole32((uint32_t)f->side[1].cred.pid);
                ctl_qos_to_wire(&f->qos, &e.qos);
                flow_ring_stats(f, 0, &v[0], &v[1], &v[2]);
                flow_ring_stats(f, 1, &v[3], &v[4], &v[5]);
                e.msgs_ab = htole64(v[0]);
                e.bytes_ab = htole64(v[1]);
                e.queued_ab = htole64(v[2]);
                e.msgs_ba = htole64(v[3]);
                e.bytes_ba = htole64(v[4]);
                e.queued_ba = htole64(v[5]);
                e.state = htole32(flow_state(f));
                uint64_t drops = atomic_load(&flow_ctl_of(f->hdr, 0)->drops) +
                                 atomic_load(&flow_ctl_of(f->hdr, 1)->drops);
                e.drops = htole32((uint32_t)MIN(drops, (uint64_t)UINT32_MAX));
                if (!list_fits(b, sizeof(e))) {
                        more = 1;
                        break;
                }
                ctl_put(b, CTL_A_FLOW_ENTRY, &e, sizeof(e));
        }
        ctl_put_u32(b, CTL_A_LIST_MORE, more);
        client_send(c, b, NULL, 0);
        free(b);
        return 0;
}
