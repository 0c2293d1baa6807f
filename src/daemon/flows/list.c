/*
 * list.c — the LIST request: daemon pid and uptime, then the names the
 * resolvers list (NAME_ENTRY: registrations) and one FLOW_ENTRY per flow the
 * client may see, whatever ends hold its sides.
 *
 * VISIBILITY: root and the daemon's uid see everything; any other uid sees
 * the names it holds and the flows it is a party to (either side).
 * BOUND: the reply is one control message (CTL_MSG_MAX: about 440 names, or
 * 270 flows). PAGING (core/listpage.h): the request's LIST_SKIP skips that
 * many visible entries (names first, then flows); a reply that had to leave
 * entries out says LIST_MORE = 1. Entries are in creation order, so a page
 * boundary moves only when objects come or go between two requests (a
 * snapshot across pages is not promised).
 */
#include <string.h>

#include "common/util.h"
#include "daemon/core/client.h"
#include "daemon/core/dispatch.h"
#include "daemon/core/listpage.h"
#include "daemon/flows/flow.h"
#include "daemon/flows/flows.h"
#include "daemon/flows/resolve.h"

/* The entry of f. Counters are read from shared memory the flow's processes
 * write: they are reported as found (relaxed loads; ring_queued() clamps),
 * never trusted for anything else. */
static void flow_entry(const flow *f, struct ctl_flow_entry_wire *e) {
        uint64_t v[6];
        memset(e, 0, sizeof(*e));
        e->id = htole64(f->node.id);
        str_copy(e->name, f->name, sizeof(e->name));
        e->pid_a = htole32((uint32_t)f->side[0].cred.pid);
        e->pid_b = htole32((uint32_t)f->side[1].cred.pid);
        ctl_qos_to_wire(&f->qos, &e->qos);
        flow_ring_stats(f, 0, &v[0], &v[1], &v[2]);
        flow_ring_stats(f, 1, &v[3], &v[4], &v[5]);
        e->msgs_ab = htole64(v[0]);
        e->bytes_ab = htole64(v[1]);
        e->queued_ab = htole64(v[2]);
        e->msgs_ba = htole64(v[3]);
        e->bytes_ba = htole64(v[4]);
        e->queued_ba = htole64(v[5]);
        e->state = htole32(flow_state(f));
        e->drops = htole32((uint32_t)MIN(flow_drops(f), (uint64_t)UINT32_MAX));
}

static int list_on_list(request *rq) {
        ipcfd *d = rq->d;
        client *c = rq->c;
        bool all = client_is_privileged(c);
        list_page page;
        list_page_init(&page, rq->reply, ctl_arg_u32(rq->args, CTL_A_LIST_SKIP, 0));
        ctl_put_u32(rq->reply, CTL_A_PID, (uint32_t)d->pid);
        ctl_put_u64(rq->reply, CTL_A_UPTIME_MS, (now_ns() - d->start_ns) / 1000000u);
        /* Names first, then flows; whatever does not fit is left out. */
        resolve_list(d, &page, all, c->cred.uid);
        flow_for_each(f) {
                if (page.more)
                        break;
                if (!all && f->side[0].cred.uid != c->cred.uid && f->side[1].cred.uid != c->cred.uid)
                        continue;
                struct ctl_flow_entry_wire e;
                flow_entry(f, &e);
                /* the host of its other side goes right after it, as part of
                 * the same entry */
                struct ctl_flow_host_wire h;
                memset(&h, 0, sizeof(h));
                h.flow_id = htole64(f->node.id);
                if (f->host)
                        str_copy(h.host, f->host, sizeof(h.host));
                list_page_put2(&page, CTL_A_FLOW_ENTRY, &e, sizeof(e), f->host ? CTL_A_FLOW_HOST : 0, &h,
                               sizeof(h));
        }
        list_page_end(&page);
        return 0;
}

int list_init(ipcfd *d) {
        static const method methods[] = { { CTL_LIST, list_on_list } };
        return dispatch_add(d, methods, ARRAY_SIZE(methods));
}
