/*
 * models.h — the kinds of round the chaos driver runs, one file each
 * (flow.c, call.c, mbox.c, mcast.c, group.c): an ops table per kind, so that the
 * driver (ipcf-chaos.c) names none of them but in its list.
 *
 * A round: the driver fills the book, calls setup, forks `procs` processes
 * that each run run(b, p) and exit, kills one of them (or the daemon, or
 * none) at a random moment, calls step every few milliseconds while any
 * lives (to end what the round made once its senders are done), and, when
 * all have ended, adds the round's outcome to the totals with tally.
 *
 * A tally counts units: a message owed to one receiver (a multicast message
 * is owed to every member). Each unit that counts as sent is exactly one of
 * delivered, reported lost (a living party was told: an error of its call,
 * a peer's death, an undelivered or lost count), with a killed process (it
 * was in the hands of a process that was killed, or its sender was killed
 * in the call and no one is left to tell), or lost unreported.
 */
#pragma once

#include "book.h"

typedef struct chaos_model {
        const char *name;
        unsigned procs;       /* processes of a round (<= CHAOS_PROCS) */
        bool daemon_kill_ok;  /* a round of it may kill the daemon */
        /* driver, before forking: make what the round needs (0 or -errno) */
        int (*setup)(chaos_book *b, uint64_t *rng);
        /* process p of the round, in its own process */
        void (*run)(chaos_book *b, unsigned p);
        /* driver, every few ms while a process lives (alive: bit p), quiet_ms:
         * how long no delivery was marked; may be NULL */
        void (*step)(chaos_book *b, uint32_t alive, uint64_t quiet_ms);
        /* driver, after every process ended */
        void (*tally)(const chaos_book *b, chaos_tally *t);
} chaos_model;

extern const chaos_model chaos_model_flow, chaos_model_call, chaos_model_mbox, chaos_model_mcast,
        chaos_model_group;

/* Helpers of the models (ipcf-chaos.c). */
/* Mark process p ready / done. */
void chaos_set_bit(_Atomic uint32_t *word, unsigned p);
/* Wait up to timeout_ms until every bit of mask is set in *word; true if so. */
bool chaos_wait_bits(_Atomic uint32_t *word, uint32_t mask, unsigned timeout_ms);
/* Settle a count of losses: units not delivered (missing) against the
 * losses reported for them (told): the reported part, what is left
 * unreported, and what was reported beyond the missing (doubt). */
void chaos_settle(chaos_tally *t, uint64_t missing, int64_t told);
