/*
 * listpage.c — paging of listing replies (see listpage.h).
 */
#include "daemon/core/listpage.h"

void list_page_init(list_page *p, ctl_builder *b, uint32_t skip) {
        p->b = b;
        p->skip = skip;
        p->more = false;
}

/* Would an attribute of len bytes still fit, leaving room for LIST_MORE (8)? */
static bool list_page_fits(const ctl_builder *b, size_t len) {
        return b->err == 0 && ((4 + len + 3) & ~(size_t)3) + 8 <= CTL_MSG_MAX - b->len;
}

bool list_page_put(list_page *p, uint16_t attr, const void *e, size_t len) {
        return list_page_put2(p, attr, e, len, 0, NULL, 0);
}

bool list_page_put2(list_page *p, uint16_t attr, const void *e, size_t len, uint16_t attr2, const void *e2,
                    size_t len2) {
        if (p->more)
                return false;
        if (p->skip) {
                p->skip--;
                return true;
        }
        size_t extra = attr2 ? ((4 + len2 + 3) & ~(size_t)3) : 0;
        if (!list_page_fits(p->b, len + extra)) {
                p->more = true;
                return false;
        }
        ctl_put(p->b, attr, e, len);
        if (attr2)
                ctl_put(p->b, attr2, e2, len2);
        return true;
}

void list_page_end(list_page *p) { ctl_put_u32(p->b, CTL_A_LIST_MORE, p->more ? 1 : 0); }
