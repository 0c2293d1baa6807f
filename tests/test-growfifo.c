/*
 * test-growfifo.c — the growable FIFO (src/common/growfifo.h): elements come
 * out oldest first, whole and numbered, across grows that happen with the
 * ring wrapped at every offset; room is refused at max (-ENOSPC) with
 * nothing changed; a first capacity never exceeds what max needs; free
 * keeps the numbering.
 */
#include <errno.h>
#include <stdlib.h>

#include "common/growfifo.h"
#include "support/test.h"

/* An element larger than a word, to catch a copy of the wrong size. */
typedef struct elem {
        uint64_t no;
        uint32_t check;
        uint8_t pad[20];
} elem;

static void push(growfifo *q, uint64_t no) {
        CHECK_EQ(growfifo_room(q, UINT32_MAX), 0);
        elem *e = growfifo_push(q);
        *e = (elem){ .no = no, .check = (uint32_t)(no * 2654435761u) };
        e->pad[19] = (uint8_t)no;
}

static void pop_check(growfifo *q, uint64_t no) {
        elem *e = growfifo_at(q, 0);
        CHECK_EQ(e->no, no);
        CHECK_EQ(e->check, (uint32_t)(no * 2654435761u));
        CHECK_EQ(e->pad[19], (uint8_t)no);
        CHECK_EQ(q->first, no);
        growfifo_pop(q);
}

TEST(elements_come_out_oldest_first_across_grows_at_every_wrap) {
        /* for each head offset in the first ring of 64: fill it wrapped
         * there, then grow through 128, 256 and 512 */
        for (uint64_t off = 0; off < 64; off++) {
                growfifo q;
                growfifo_init(&q, sizeof(elem));
                uint64_t in = 0, out = 0;
                while (in < off)
                        push(&q, in++);
                while (out < off)
                        pop_check(&q, out++);
                while (in < off + 500)
                        push(&q, in++);
                CHECK_EQ(q.n, 500);
                CHECK_EQ(q.cap, 512);
                for (uint32_t i = 0; i < q.n; i++)
                        CHECK_EQ(((elem *)growfifo_at(&q, i))->no, off + i);
                while (out < in)
                        pop_check(&q, out++);
                CHECK_EQ(q.n, 0);
                growfifo_free(&q);
        }
}

TEST(by_number_finds_what_is_in_and_nothing_else) {
        growfifo q;
        growfifo_init(&q, sizeof(elem));
        for (uint64_t i = 0; i < 100; i++)
                push(&q, i);
        for (uint64_t i = 0; i < 30; i++)
                pop_check(&q, i);
        CHECK(growfifo_by_no(&q, 29) == NULL);
        CHECK(growfifo_by_no(&q, 100) == NULL);
        CHECK(growfifo_by_no(&q, UINT64_MAX) == NULL);
        for (uint64_t i = 30; i < 100; i++)
                CHECK_EQ(((elem *)growfifo_by_no(&q, i))->no, i);
        /* the numbering goes on after free */
        growfifo_free(&q);
        CHECK_EQ(q.first, 100);
        CHECK(growfifo_by_no(&q, 99) == NULL);
        CHECK_EQ(growfifo_room(&q, 10), 0);
        *(elem *)growfifo_push(&q) = (elem){ .no = 7 };
        CHECK_EQ(((elem *)growfifo_by_no(&q, 100))->no, 7);
        growfifo_free(&q);
}

TEST(room_stops_at_max_and_changes_nothing) {
        growfifo q;
        growfifo_init(&q, sizeof(uint32_t));
        CHECK_EQ(growfifo_room(&q, 0), -ENOSPC);
        CHECK(q.v == NULL);
        for (uint32_t i = 0; i < 100; i++) {
                CHECK_EQ(growfifo_room(&q, 100), 0);
                *(uint32_t *)growfifo_push(&q) = i;
        }
        CHECK_EQ(q.cap, 128);
        uint32_t cap = q.cap;
        CHECK_EQ(growfifo_room(&q, 100), -ENOSPC);
        CHECK_EQ(q.n, 100);
        CHECK_EQ(q.cap, cap);
        /* a larger max lets it go on into the room it has */
        CHECK_EQ(growfifo_room(&q, 200), 0);
        growfifo_pop(&q);
        CHECK_EQ(growfifo_room(&q, 100), 0);
        growfifo_free(&q);
        /* a first capacity holds max, no more than its power of two */
        growfifo_init(&q, sizeof(uint32_t));
        CHECK_EQ(growfifo_room(&q, 5), 0);
        CHECK_EQ(q.cap, 8);
        for (uint32_t i = 0; i < 5; i++)
                *(uint32_t *)growfifo_push(&q) = i;
        CHECK_EQ(growfifo_room(&q, 5), -ENOSPC);
        growfifo_free(&q);
        growfifo_init(&q, sizeof(uint32_t));
        CHECK_EQ(growfifo_room(&q, 1), 0);
        CHECK_EQ(q.cap, 1);
        *(uint32_t *)growfifo_push(&q) = 9;
        CHECK_EQ(growfifo_room(&q, 1), -ENOSPC);
        growfifo_pop(&q);
        CHECK_EQ(growfifo_room(&q, 1), 0);
        CHECK_EQ(q.head, 0); /* wraps in a ring of one */
        growfifo_free(&q);
}
