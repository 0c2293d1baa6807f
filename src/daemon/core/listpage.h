/*
 * listpage.h — one page of a listing reply (LIST, MODEL_LIST): entries are
 * put one by one into a reply that is one control message; the first `skip`
 * are left out (the client's LIST_SKIP), and once an entry does not fit, it
 * and every later one are left out and the reply says LIST_MORE = 1: the
 * client asks again with LIST_SKIP increased by what it received.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ctl.h"

typedef struct list_page {
        ctl_builder *b;     /* the reply (borrowed) */
        uint32_t skip;      /* entries still to leave out */
        bool more;          /* the reply is full */
} list_page;

void list_page_init(list_page *p, ctl_builder *b, uint32_t skip);
/* Put one entry (attribute attr of len bytes) unless skipped or full.
 * Returns false once the page is full (the caller may stop). */
bool list_page_put(list_page *p, uint16_t attr, const void *e, size_t len);
/* The same for an entry that carries a second attribute with it (attr2 0:
 * none): both are put, or neither (one entry for the paging). */
bool list_page_put2(list_page *p, uint16_t attr, const void *e, size_t len, uint16_t attr2, const void *e2,
                    size_t len2);
/* Close the page: LIST_MORE. */
void list_page_end(list_page *p);
