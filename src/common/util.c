/*
 * util.c — the out-of-line helpers of util.h.
 */
#include "common/util.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -1;
}

void efd_signal(int efd) {
        uint64_t one = 1;
        ssize_t r;
        do
                r = write(efd, &one, sizeof(one));
        while (r < 0 && errno == EINTR);
}

bool efd_drain(int efd) {
        uint64_t v;
        ssize_t r;
        do
                r = read(efd, &v, sizeof(v));
        while (r < 0 && errno == EINTR);
        return r == sizeof(v);
}

void str_printable(char *s) {
        for (; *s; s++)
                if (*s < ' ' || *s > '~')
                        *s = '?';
}

size_t str_copy(char *dst, const char *src, size_t size) {
        size_t n = strlen(src);
        if (size) {
                size_t k = n < size - 1 ? n : size - 1;
                memcpy(dst, src, k);
                dst[k] = 0;
        }
        return n;
}
