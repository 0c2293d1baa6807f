/*
 * callwire.h — the frames of a call channel (a flow in MESSAGE mode between a
 * caller and a service; see call.c and service.c).
 *
 *   u64 id    the call's id, unique per channel, never 0
 *   u32 kind  CALL_REQ (caller -> service), CALL_REPLY or CALL_FAIL (back)
 *   i32 code  CALL_FAIL: the service's code; else 0
 *   payload
 *
 * The peer may be hostile: a frame shorter than the header, or of an unknown
 * kind, is a protocol error that ends the channel.
 */
#pragma once

#include <stdint.h>

enum { CALL_REQ = 1, CALL_REPLY = 2, CALL_FAIL = 3 };

/* The value a service's side of a channel shows in its run slot's `blocked`
 * (struct flow_run, ring.h) while it is awake and has many callers at once
 * (inbox.c): a caller's answer may be many turns away and callers may share a
 * CPU, so a caller on another CPU than the service's waits with sched_yield()
 * between looks, one on the service's CPU sleeps at once (wait.c; no plain
 * spin, no catch-up spin: call.c). Any nonzero value already stops a plain
 * spin (port_peer_spinnable); 1 is asleep. */
#define CALL_RUN_BUSY 2u

struct call_hdr {
        uint64_t id;
        uint32_t kind;
        int32_t code;
};

_Static_assert(sizeof(struct call_hdr) == 16, "call header is 16 bytes");
