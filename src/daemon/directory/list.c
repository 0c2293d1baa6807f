/*
 * list.c — DIR_LIST, the directory's view for `ipcf ls --all-hosts`: the
 * records of the directory's cache, one page per request (core/listpage.h:
 * LIST_SKIP, LIST_MORE), each with what trust.c says of it, after the
 * directory's health. Without a directory ([directory] backend = static)
 * the reply has neither: the caller shows the enrolled hosts instead.
 *
 * POLICY: a record is listed only if the caller's policy would let it
 * allocate or register the name — the rule of WATCH (models/notify.c): a
 * listing must not tell of names the policy hides.
 *
 * PAGES: the cache is walked in its table's order, the first LIST_SKIP
 * records the caller may see left out. A page is one snapshot; the cache
 * may change between pages (a record then shows twice or not at all), as
 * LIST's pages may. The library bounds the pages it asks for.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/ctl.h"
#include "common/util.h"
#include "daemon/core/client.h"
#include "daemon/core/dispatch.h"
#include "daemon/core/listpage.h"
#include "daemon/core/policy.h"
#include "daemon/directory/cache.h"
#include "daemon/directory/dirmodule.h"

typedef struct list_walk {
        request *rq;
        list_page page;
        uint64_t now;
} list_walk;

/* The attributes as "K=V" lines into out; returns the text's length. */
static size_t attrs_text(const dir_entry *e, char *out, size_t size) {
        size_t n = 0;
        out[0] = 0;
        for (unsigned i = 0; i < e->n_attrs && n < size; i++) {
                int k = snprintf(out + n, size - n, "%s%s=%s", i ? "\n" : "", e->attr_key[i], e->attr_val[i]);
                if (k < 0)
                        break;
                n = MIN(n + (size_t)k, size - 1);
        }
        return n;
}

static bool list_one(void *ctx, const dir_entry *e) {
        list_walk *w = ctx;
        const ipcfd *d = w->rq->d;
        const cred *who = &w->rq->c->cred;
        const char *name = e->name->name;
        if (policy_check(d, name, POLICY_ALLOCATE, who) < 0 && policy_check(d, name, POLICY_REGISTER, who) < 0)
                return true;
        static dir_record rec;
        dir_entry_to_record(e, &rec);
        struct ctl_dir_record_wire r;
        memset(&r, 0, sizeof(r));
        str_copy(r.name, rec.name, sizeof(r.name));
        str_copy(r.host, rec.host, sizeof(r.host));
        str_copy(r.addr, rec.addr, sizeof(r.addr));
        str_copy(r.fp, rec.fp, sizeof(r.fp));
        r.status = htole32((uint32_t)dir_record_status(&rec));
        r.revision = (int64_t)htole64((uint64_t)e->mod_revision);
        r.lease = (int64_t)htole64((uint64_t)e->lease);
        r.age_ms = htole64(w->now > e->since_ns ? (w->now - e->since_ns) / 1000000u : 0);
        static char attrs[DIR_ATTRS_MAX * (DIR_ATTR_KEY_MAX + DIR_ATTR_VAL_MAX + 2) + 1];
        size_t al = attrs_text(e, attrs, sizeof(attrs));
        return list_page_put2(&w->page, CTL_A_DIR_RECORD, &r, sizeof(r), al ? CTL_A_DIR_ATTRS : 0, attrs, al + 1);
}

static int dir_on_list(request *rq) {
        list_walk w = { .rq = rq, .now = now_ns() };
        list_page_init(&w.page, rq->reply, ctl_arg_u32(rq->args, CTL_A_LIST_SKIP, 0));
        if (the_directory) {
                dir_health_reply(rq->reply);
                dir_walk(the_directory, list_one, &w);
        }
        list_page_end(&w.page);
        return 0;
}

int dir_list_init(ipcfd *d) {
        static const method methods[] = { { CTL_DIR_LIST, dir_on_list } };
        return dispatch_add(d, methods, ARRAY_SIZE(methods));
}
