/*
 * book.h — the chaos driver's books: what every process of a round did with
 * every message, kept in memory shared by the driver and the round's
 * processes (mapped MAP_SHARED before they are forked), so that what a
 * process did before it was killed is still known.
 *
 * Rules: a process marks a message only after the call that moved it
 * returned (a sender marks `sent` once its send succeeded, a receiver marks
 * `got` once it checked the message's checksum); a killed process may thus
 * have sent a message it never marked — the tallies count a message as sent
 * when anyone marked it. Only the driver writes the fields below "driver".
 *
 * Messages (chaos_msg_make / chaos_msg_check): a 24-byte header (magic,
 * round, number, payload length, checksum of header and payload) and a
 * payload of 0..CHAOS_PAYLOAD_MAX reproducible bytes; a receiver rejects
 * anything else as corrupt.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CHAOS_MAX_MSGS 4096   /* messages per round (per sender) */
#define CHAOS_PROCS 3         /* processes per round */
#define CHAOS_SINKS 2         /* receivers whose deliveries are kept apart */
#define CHAOS_PAYLOAD_MAX 1000
#define CHAOS_MSG_MAX (24 + CHAOS_PAYLOAD_MAX)

typedef struct chaos_book {
        /* the round, set by the driver before it forks */
        uint32_t round, n_msgs;
        uint64_t seed;
        char name[64];          /* the name the round's processes meet at */
        uint32_t variant;       /* model-specific (e.g. the multicast policy) */
        uint32_t pace_us;       /* a receiver pauses this long after each message */
        bool forget_first;      /* --inject-loss: receivers never mark message 0 (a
                                 * loss the books must see: the driver's own test) */
        /* progress, written by the round's processes */
        _Atomic uint32_t ready;   /* bit p: process p is set up */
        _Atomic uint32_t done;    /* bit p: process p finished its part (a sender: sending) */
        _Atomic uint32_t stop;    /* the driver asks the long-lived processes to end */
        _Atomic uint8_t sent[CHAOS_MAX_MSGS];                 /* the send returned success */
        _Atomic uint8_t told_msg[CHAOS_MAX_MSGS];             /* its sender was told it may be lost */
        _Atomic uint16_t got[CHAOS_SINKS][CHAOS_MAX_MSGS];    /* deliveries, per receiver */
        _Atomic int32_t receipt_pid[CHAOS_MAX_MSGS];          /* mailbox: who took it, by receipt */
        _Atomic int64_t told[CHAOS_PROCS];  /* losses reported to process p (counts) */
        _Atomic uint32_t peer_gone;         /* a flow's writer learned its reader died */
        _Atomic uint32_t corrupt, out_of_order, late, errors;
        _Atomic int32_t last_error;         /* the last unexpected error, for the report */
        _Atomic uint8_t holding[CHAOS_PROCS]; /* group: process p holds the lock (set after
                                               * locking, cleared before unlocking) */
        _Atomic uint64_t ops[CHAOS_PROCS];    /* group: updates process p completed */
        /* driver */
        pid_t pid[CHAOS_PROCS];
        bool killed[CHAOS_PROCS];
        bool daemon_killed;
        bool ended;            /* the driver destroyed what the round made */
        int64_t destroy_told;  /* losses the destroyer of a mailbox or group was told */
        int64_t final_value;   /* group: the counter, read by the driver at the end */
        bool final_told;       /* group: the driver's own lock found the group inconsistent */
} chaos_book;

/* What a round's tallies add up to (see ipcf-chaos.c's report for each). */
typedef struct chaos_tally {
        uint64_t sent, delivered, reported, with_killed, lost_unreported;
        uint64_t duplicates, corrupt, out_of_order, late, errors, doubt;
} chaos_tally;

/* Note an unexpected outcome err (a negative errno) of a process. */
void chaos_book_error(chaos_book *b, int err);

/* Fill buf (CHAOS_MSG_MAX bytes) with message seq of the round; returns its length. */
size_t chaos_msg_make(void *buf, const chaos_book *b, uint32_t seq);
/* The number of the message in buf (len bytes), or -1 if it is not a whole,
 * intact message of this round (then b->corrupt is counted). */
int64_t chaos_msg_check(chaos_book *b, const void *buf, size_t len);

/* Mark message i delivered to receiver k, then pause b->pace_us. */
void chaos_got(chaos_book *b, unsigned k, uint32_t i);
/* Receive on handle h until its end: recv (ipcf_read's shape) is called
 * again on -ETIMEDOUT, each intact message's number goes to on_msg, which
 * returns false to stop. Returns 1 when on_msg stopped, else the error that
 * ended h (-EPIPE, -ECONNRESET; any other is noted as unexpected). */
typedef ssize_t (*chaos_recv_fn)(int h, void *buf, size_t cap, int timeout_ms);
int chaos_receive(chaos_book *b, int h, chaos_recv_fn recv,
                  bool (*on_msg)(chaos_book *b, uint32_t seq, void *ctx), void *ctx);
/* Whether any receiver marked message i. */
unsigned chaos_got_any(const chaos_book *b, uint32_t i);
/* Whether message i counts as sent: its sender marked it, or it was received. */
bool chaos_was_sent(const chaos_book *b, uint32_t i);

/* Milliseconds of CLOCK_MONOTONIC; sleep ms milliseconds. */
uint64_t chaos_now_ms(void);
void chaos_sleep_ms(unsigned ms);
/* A 64-bit xorshift step (never 0 from a non-zero state). */
uint64_t chaos_rand(uint64_t *state);
