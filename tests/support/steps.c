/*
 * steps.c — parent and child taking turns through pipes (see steps.h).
 */
#include "support/steps.h"

#include <poll.h>
#include <unistd.h>

#include "support/test.h"

void steps_init(struct steps *s) {
        CHECK_OK(pipe(s->to_child));
        CHECK_OK(pipe(s->to_parent));
}

void step_send(int fd) { CHECK_EQ(write(fd, "s", 1), 1); }

void step_wait(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        CHECK_EQ(poll(&p, 1, 10000), 1);
        char c;
        CHECK_EQ(read(fd, &c, 1), 1);
}
