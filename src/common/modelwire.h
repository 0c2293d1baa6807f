/*
 * modelwire.h — the frames on mailbox and multicast flows (docs/MODELS.md).
 *
 * These flows run between a client and the daemon (the broker), in MESSAGE
 * mode. Every message on them is one frame: this 32-byte header, then the
 * payload.
 *
 *   client -> daemon   MW_DATA      seq = the sender's number of the message,
 *                                   flags MW_F_RECEIPT if it wants a receipt
 *   daemon -> receiver MW_DATA      seq, pid/uid/gid = the sender (stamped from
 *                                   its flow's credentials), then the payload
 *   daemon -> sender   MW_RECEIPT   seq of the sender's message, pid = receiver
 *   daemon -> sender   MW_UNDELIVERED  seq = how many of its messages the
 *                                   mailbox held when it was destroyed; payload
 *                                   u64 = how many the daemon took from its
 *                                   flow in all (the rest never left it)
 *   daemon -> member   MW_LOST      seq = messages dropped for this member since
 *                                   the last MW_LOST (multicast DROP)
 *
 * TRUST: both ends validate every frame (length >= header, known kind, kinds
 * that carry no payload have none); a bad frame from a client makes the
 * daemon end that client's flow, a bad frame from the daemon is -EPROTO.
 */
#pragma once

#include <stdint.h>

#include "ipcf.h"

enum { MW_DATA = 1, MW_RECEIPT = 2, MW_UNDELIVERED = 3, MW_LOST = 4 };
/* MW_F_RECEIPT: the sender wants a receipt. MW_F_STREAM (daemon -> receiver):
 * the mailbox is a byte stream: the receiver may read the payload in pieces. */
enum { MW_F_RECEIPT = 1u, MW_F_STREAM = 2u };

struct mw_hdr {
        uint32_t kind;
        uint32_t flags;
        uint64_t seq;
        uint32_t pid, uid, gid, reserved;
};

_Static_assert(sizeof(struct mw_hdr) == 32, "model frame header is 32 bytes");

/* The largest payload of a mailbox/group message, and the broker's ring
 * bound (per direction): the daemon maps these flows whole. */
#define MW_MSG_MAX IPCF_MODEL_MAX_MSG_SIZE
#define MW_MSG_DEFAULT (64u * 1024u)
#define MW_RING_MAX (1024u * 1024u)
