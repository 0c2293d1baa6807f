/*
 * batch.h — the "ipcf-many" channel's batching (chan.c): messages sent one
 * at a time are gathered and written BATCH_MSGS at once with
 * ipcf_write_many(); the receiver takes what is queued with ipcf_read_many()
 * and hands it out one at a time. As ZeroMQ's send gathers messages for its
 * I/O thread, each message is copied once more than by a plain ipcf flow
 * (into the batch, out of it), and that copy is in the figures.
 *
 * Rules: only messages of at most BATCH_SLOT bytes are gathered; a larger one
 * flushes the batch and goes alone. Whoever gathers must flush before it
 * waits for the other side (chan_flush): nothing is sent until then.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define BATCH_MSGS 32
#define BATCH_SLOT 1024u

typedef struct msg_batch {
        struct iovec iov[BATCH_MSGS];
        uint8_t *buf;      /* BATCH_MSGS slots of BATCH_SLOT bytes */
        unsigned n;        /* sender: messages gathered; receiver: messages read */
        unsigned next;     /* receiver: the next one to hand out */
} msg_batch;

/* A batch for messages up to BATCH_SLOT bytes; NULL without memory. */
msg_batch *batch_new(void);
void batch_free(msg_batch *b);

/* Gather a message for port (flushing a full batch); a larger one is sent
 * alone after the batch. 0 or -errno. */
int batch_send(msg_batch *b, int port, const void *buf, size_t len, int timeout_ms);
/* Write what is gathered (ipcf_write_many until all is queued). 0 or -errno. */
int batch_flush(msg_batch *b, int port, int timeout_ms);
/* The next message into buf (cap bytes): from what was read, else one
 * ipcf_read_many; a message larger than a slot is read alone. Its length in
 * *ret_len. 0 or -errno. */
int batch_recv(msg_batch *b, int port, void *buf, size_t cap, size_t *ret_len, int timeout_ms);
