/*
 * eventloop-epoll.c — an echo server on a bare epoll loop: the registration
 * and every flow are descriptors in one epoll set (see eventloop-echo.h for
 * the rules of a port in a loop).
 *
 *   eventloop-epoll NAME [FLOWS]   serve NAME; with FLOWS, exit after that
 *                                  many flows ended, printing the totals
 *
 * Built from an installed ipcf with nothing but pkg-config:
 *   cc eventloop-epoll.c $(pkg-config --cflags --libs ipcf) -o eventloop-epoll
 */
#include <sys/epoll.h>
#include <unistd.h>

#include "eventloop-echo.h"

/* Watch the flow's descriptor for want, instead of the one it watched. */
static int watch(int ep, echo_flow *f, int old_fd, enum echo_want want) {
        if (old_fd >= 0)
                epoll_ctl(ep, EPOLL_CTL_DEL, old_fd, NULL);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = f };
        int fd = echo_flow_fd(f, want);
        if (fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
                return -1;
        f->loop_data = (void *)(intptr_t)(fd + 1); /* the fd it watches, + 1 */
        return 0;
}

int main(int argc, char **argv) {
        unsigned long max_flows;
        int reg = echo_start(argc, argv, "eventloop-epoll", &max_flows);
        if (reg < 0)
                return 1;
        int ep = epoll_create1(EPOLL_CLOEXEC);
        /* data.ptr NULL: the registration; anything else: a flow. */
        struct epoll_event rev = { .events = EPOLLIN, .data.ptr = NULL };
        if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ipcf_fd(reg), &rev) < 0) {
                perror("eventloop-epoll: epoll");
                return 1;
        }
        echo_totals t = { 0 };
        while (max_flows == 0 || t.flows < max_flows) {
                struct epoll_event evs[16];
                int n = epoll_wait(ep, evs, 16, -1);
                for (int i = 0; i < n; i++) {
                        echo_flow *f = evs[i].data.ptr;
                        if (!f) {
                                if ((f = echo_accept(reg)) && watch(ep, f, -1, ECHO_WANT_READ) < 0)
                                        echo_flow_end(f, &t);
                                continue;
                        }
                        int fd = (int)(intptr_t)f->loop_data - 1;
                        enum echo_want want = echo_flow_run(f, &t);
                        if (want == ECHO_DONE) {
                                epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                                echo_flow_end(f, &t);
                        } else if (echo_flow_fd(f, want) != fd && watch(ep, f, fd, want) < 0) {
                                echo_flow_end(f, &t);
                        }
                }
        }
        echo_report(&t);
        close(ep);
        ipcf_dealloc(reg, NULL);
        return 0;
}
