/*
 * relay.h — the relay end: the daemon's side of a flow whose other side is a
 * process on another host (flows/flow.h ENDS).
 *
 * The application's side of a remote flow is the same shared-memory port as
 * for a local flow. The daemon holds the other side as a daemon end
 * (flows/broker.h: it maps the region and uses the rings and wake-up
 * channels exactly as a library port does) and relays it into an EFCP flow
 * inside the association with the other host:
 *
 *   app ──ring──► relay ──efcp_flow_sendv──► engine ══UDP══► engine ──► relay ──ring──► app
 *
 * WIRE (each EFCP message of a relayed flow): a flags byte (0x01 FIRST, 0x02
 * LAST), a u32 (big-endian): on a FIRST the record's whole length, else the
 * piece's offset in it; then the piece. A record longer than RELAY_CHUNK
 * bytes (at most the qos's max_msg_size: 64 MiB) goes in several pieces and
 * is reassembled straight into the receiving ring (reserved at its FIRST,
 * committed at its LAST). Datagram channels ride an unreliable ordered EFCP
 * flow: a datagram missing a piece is given up whole, never delivered in
 * part (the offsets tell).
 *
 * BACK-PRESSURE, end to end: the relay takes a record from the ring only when
 * the engine accepts it (the peer's credit), and takes a message from the
 * engine only when the ring has room for it; the engine's credit follows
 * what the relay took. A slow reader on B stops the writer on A; nothing is
 * dropped on a reliable flow. The relay never blocks: a full ring or no
 * credit is waited for (the ring's wake-up channel, the engine's ready list).
 *
 * ENDS: the local application's end (dealloc, death) goes to the other host
 * after every record written before it, as DEALLOC (code, reason) on the
 * control flow, and the EFCP flow closes gracefully; the other host's end
 * arrives the same way and is written into this side's end record once
 * every message before it is in the ring. A host that stops answering or
 * restarts ends its flows with IPCF_END_PEER_DIED, "host unreachable" or
 * "peer host restarted".
 *
 * WAITS: a relayed flow is granted spin_us = 0 (relay_qos), whatever was
 * asked, on both hosts: a spinning application only takes the CPU that both
 * daemons need to carry its messages (the library's spin and catch-up
 * spin). The daemon spins instead, bounded, where an answer is due within
 * microseconds (relay.c SPIN): after it delivered a message (watching the
 * application's ring, whose next write then rings nobody) and after it sent
 * one (watching the socket). Each window lasts at most RELAY_SPIN_NS, the
 * loop serves every other event meanwhile, and windows that end without
 * their answer back off (a stream, a slow server).
 *
 * A MAILBOX RECEIVER ON THE OTHER HOST: the broker counts a message taken
 * when the consumer of the receiver's ring passes it — here the relay, not
 * the remote process. So the relay on the mailbox's host holds its position
 * (bport_hold: RELAY_HELD, "held") and publishes it only as far as the
 * other host says its process has read (CONSUMED on the control flow: how
 * many records in all, relay_on_consumed); the relay on the receiver's host
 * ("reporting") watches its process consume the records it delivered
 * (bport_passed) and says so, before any DEALLOC. A receiver that ends
 * there leaves what it had not read unpublished here, and the broker gives
 * it back to the other receivers, as for a local one. At most
 * RELAY_HELD_MAX records are in flight unread per such flow.
 *
 * A MAILBOX SENDER ON THE OTHER HOST: the broker counts, in the sender's
 * flow header, the sender's messages receivers took (flow_hdr.broker; its
 * library reads it when the mailbox's daemon is gone: docs/MODELS.md), and
 * here the flow whose header it writes is the relay's on the mailbox's
 * host ("telling"). That relay tells the sender's host the count as it
 * moves (DELIVERED on the control flow: how many records in all): it looks
 * RELAY_TELL_NS after records came and while some are not counted, twice
 * as late after each look that found the count unmoved (at most
 * RELAY_TELL_MAX_NS), and once more before its DEALLOC; the relay on the
 * sender's host ("counting") writes the count into its own flow's header,
 * where the sender's library reads it when the flow ends because the
 * mailbox's host went (IPCF_END_PEER_DIED) or its own daemon dies. A count
 * below the last or beyond the records sent ends the flow.
 *
 * TRUST: the other daemon is authenticated, not trusted: a message that
 * breaks the wire above ends that flow (IPCF_END_PROTOCOL) and nothing else.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "daemon/core/ipcfd.h"
#include "daemon/flows/flow.h"
#include "daemon/hosts/hosts.h"

#define RELAY_FIRST 0x01
#define RELAY_LAST 0x02
#define RELAY_HDR_MAX 5
/* The largest piece of a record in one EFCP message (the engine's max_msg
 * is 64 KiB). */
#define RELAY_CHUNK (65536 - RELAY_HDR_MAX)
/* Records of a mailbox receiver's flow sent and not yet read at the other
 * host (MAILBOX RECEIVER above). */
#define RELAY_HELD_MAX 4096u
/* MAILBOX SENDER above: the telling relay's first look after records came,
 * and its longest wait between looks while the count stands still. */
#define RELAY_TELL_NS (10 * 1000000ull)
#define RELAY_TELL_MAX_NS (250 * 1000000ull)
/* How long a flow the other host ended waits for the reason (its DEALLOC on
 * the control flow) after the engine's end, before it ends without one. */
#define RELAY_REASON_WAIT_NS (2 * 1000000000ull)

typedef struct relay relay;

/* A relay for host h whose local peer is the client peer (prog); reliable:
 * the EFCP flow's policy. NULL on -ENOMEM. */
relay *relay_new(hostrec *h, const cred *peer, const char *peer_prog, bool reliable);
/* Before relay_start: r carries a mailbox receiver's channel (MAILBOX
 * RECEIVER above): held on the mailbox's host (held), reporting on the
 * receiver's (!held). */
void relay_set_receiver(relay *r, bool held);
/* Before relay_start: r carries a mailbox sender's channel (MAILBOX SENDER
 * above): telling on the mailbox's host (here), counting on the sender's
 * (!here). */
void relay_set_sender(relay *r, bool here);
/* The terms a relayed flow is granted, from what was asked (q, changed in
 * place): no spinning (WAITS above). */
void relay_qos(ipcf_qos *q);
/* The end of side for the flow being made (alloc_accept, or an origin's
 * end): who/prog is the remote process this side stands for; the local
 * peer watches this daemon's death in its place. */
void relay_spec(relay *r, flow_end_spec *ret, const cred *who, const char *prog);
/* The flow is made (our side opened): relay it over EFCP flow (lport, rport)
 * with the host; ef may be NULL (opened here). Returns 0, or -errno (the
 * host is down: the caller ends the flow). */
int relay_start(relay *r, flow *f, efcp_flow *ef, uint32_t lport, uint32_t rport);
/* A relay that never started (its flow could not be made). */
void relay_discard(relay *r);
/* A relay whose flow was made but that cannot relay it: end our side with
 * (code, reason) and go. */
void relay_fail(relay *r, uint32_t code, const char *reason);

/* The engine flow moved (the link's ready list). */
void relay_on_engine(relay *r);
/* The other host's process read count records of this flow in all (its
 * CONSUMED; a held relay only). */
void relay_on_consumed(relay *r, uint64_t count);
/* The mailbox's receivers took count records of this flow in all (the
 * other host's DELIVERED; a counting relay only). */
void relay_on_delivered(relay *r, uint64_t count);
/* The other host said this flow ended (its DEALLOC). */
void relay_on_dealloc(relay *r, uint32_t code, const char *reason);
/* The host went down: every relay with it ends with the reason
 * (EFCP_REASON_*: "host unreachable", "peer host restarted"). */
void relays_host_down(hostrec *h, uint32_t reason);
/* Daemon exit: every relay with h lets go without telling anyone. */
void relays_shutdown(hostrec *h);

/* The relay of h whose peer port is rport, or NULL. */
relay *relay_by_rport(hostrec *h, uint32_t rport);
