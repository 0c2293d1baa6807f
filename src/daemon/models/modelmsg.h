/*
 * modelmsg.h — the frames of mailbox and multicast flows as the daemon moves
 * them (common/modelwire.h): a message taken from a sender's broker port into
 * the daemon's memory, stamped with the sender's identity; written on to a
 * receiver's port; and the header-only frames (receipts, losses).
 *
 * One piece of code for both models: what a sender may write is checked here
 * (a frame shorter than its header, of another kind than DATA, or longer than
 * the object's max_msg breaks the protocol), and every stamp is the sender's
 * flow's kernel credentials, never what it wrote.
 *
 * BUFFERS: a message is one block (header and payload). Blocks of 4 KiB and
 * more are kept for reuse when freed (model_msg_free), in size classes of a
 * quarter octave, at most MODEL_MSG_POOL_BYTES in all; a freed large block
 * went back to the kernel (glibc trims the heap's top), so each 64 KiB
 * message cost page faults and zeroing on the daemon's CPU.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "daemon/flows/broker.h"

typedef struct model_msg {
        struct model_msg *next;
        uint64_t sender;              /* the sender's flow id */
        uint64_t seq;                 /* the sender's number (mailbox), the group's (multicast) */
        uint32_t flags;               /* MW_F_RECEIPT if the sender wants a receipt */
        uint32_t pid, uid, gid;       /* the sender, from its flow */
        uint32_t len;
        uint32_t size_class;          /* of its block: 0 plain malloc, else kept for reuse */
        uint8_t data[];
} model_msg;

/* Blocks kept for reuse, at most (the daemon's, whatever the clients do). */
#define MODEL_MSG_POOL_BYTES (8u << 20)

/* Free a message the model owns (NULL: nothing): its block is kept for the
 * next message of its size class while the pool has room. */
void model_msg_free(model_msg *m);

/* Bytes of blocks kept for reuse now (for tests and logs). */
size_t model_msg_pool_bytes(void);

/* Take the next DATA frame of b into a new message (the caller owns it:
 * model_msg_free()). Returns 1 and *ret; 0 if none waits (the wake-up is armed); -ENOMEM
 * (try again on the next wake-up); -EPROTO if b broke the protocol (the
 * caller ends it). */
int model_msg_take(bport *b, uint32_t max_msg, model_msg **ret);

/* As model_msg_take, but the payload stays where it is: *ret has every
 * field but data[] (its block is big enough), *ret_data points at the
 * payload in b's ring, and the frame stays peeked: the caller copies it
 * or writes it on (model_msg_put_data), then bport_consume(b). */
int model_msg_peek(bport *b, uint32_t max_msg, model_msg **ret, const void **ret_data);

/* Write m to b as a DATA frame with seq and frame flags. Returns 0 and the
 * record's position (*ret_pos, may be NULL), -EAGAIN if it does not fit now,
 * or another -errno (-EPROTO: b's ring is broken). */
int model_msg_put(bport *b, const model_msg *m, uint64_t seq, uint32_t flags, uint64_t *ret_pos);
/* The same with m->len payload bytes from data (another port's ring). */
int model_msg_put_data(bport *b, const model_msg *m, const void *data, uint64_t seq, uint32_t flags,
                       uint64_t *ret_pos);

/* Write a header-only frame (RECEIPT, LOST). False if it does not fit now. */
bool model_frame_put(bport *b, uint32_t kind, uint64_t seq, uint32_t pid);
