/*
 * batch.c — gathering messages into ipcf_write_many / ipcf_read_many
 * batches for the "ipcf-many" channel (see batch.h).
 */
#include "batch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ipcf.h"

msg_batch *batch_new(void) {
        msg_batch *b = calloc(1, sizeof(*b));
        if (b && !(b->buf = malloc((size_t)BATCH_MSGS * BATCH_SLOT))) {
                free(b);
                b = NULL;
        }
        return b;
}

void batch_free(msg_batch *b) {
        if (b)
                free(b->buf);
        free(b);
}

int batch_flush(msg_batch *b, int port, int timeout_ms) {
        unsigned done = 0;
        while (done < b->n) {
                ssize_t r = ipcf_write_many(port, b->iov + done, b->n - done, timeout_ms);
                if (r < 0)
                        return (int)r;
                done += (unsigned)r;
        }
        b->n = 0;
        return 0;
}

int batch_send(msg_batch *b, int port, const void *buf, size_t len, int timeout_ms) {
        if (len > BATCH_SLOT) {
                int r = batch_flush(b, port, timeout_ms);
                ssize_t n = r < 0 ? r : ipcf_write(port, buf, len, timeout_ms);
                return n < 0 ? (int)n : 0;
        }
        uint8_t *slot = b->buf + (size_t)b->n * BATCH_SLOT;
        memcpy(slot, buf, len);
        b->iov[b->n++] = (struct iovec){ slot, len };
        return b->n == BATCH_MSGS ? batch_flush(b, port, timeout_ms) : 0;
}

int batch_recv(msg_batch *b, int port, void *buf, size_t cap, size_t *ret_len, int timeout_ms) {
        if (b->next == b->n) {
                for (unsigned i = 0; i < BATCH_MSGS; i++)
                        b->iov[i] = (struct iovec){ b->buf + (size_t)i * BATCH_SLOT, BATCH_SLOT };
                b->n = b->next = 0;
                ssize_t r = ipcf_read_many(port, b->iov, BATCH_MSGS, timeout_ms);
                if (r == -EMSGSIZE) {
                        /* larger than a slot: alone, straight into buf */
                        r = ipcf_read(port, buf, cap, timeout_ms);
                        if (r >= 0)
                                *ret_len = (size_t)r;
                        return r < 0 ? (int)r : 0;
                }
                if (r < 0)
                        return (int)r;
                b->n = (unsigned)r;
        }
        struct iovec *m = &b->iov[b->next++];
        if (m->iov_len > cap)
                return -EMSGSIZE;
        memcpy(buf, m->iov_base, m->iov_len);
        *ret_len = m->iov_len;
        return 0;
}
