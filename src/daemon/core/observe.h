/*
 * observe.h — observers: modules learn of events by subscribing, never by
 * being called by name from the module where the event happens.
 *
 * EVENTS (who emits them; the subject fields set):
 *   OBSERVE_CLIENT_GONE   client.c, when a connection ends (its process died,
 *                         hung up or broke the protocol), before the client is
 *                         freed: every module releases what it holds for it
 *                         (.client). This is peer death: the flows module,
 *                         subscribed first, ends the client's flow sides before
 *                         anything else happens.
 *   OBSERVE_NAME_CHANGED  a module whose names can be reached (registrations,
 *                         mailboxes, groups) after one appeared or went away:
 *                         the name may have come up or gone down (.name; ask
 *                         the resolvers, flows/resolve.h, which it is now).
 *   OBSERVE_FLOW_ENDED    flows/flow.c, when a side of a flow ended with an end
 *                         record (.flow, .side: the side that ended).
 *   OBSERVE_CHILD         the signal handler on SIGCHLD (children watched
 *                         without a pidfd).
 *   OBSERVE_ALLOC_ASKED   flows/alloc.c, when a client's ALLOC was taken, or
 *                         another origin made an allocation (.alloc).
 *   OBSERVE_ALLOC_FAILED  flows/alloc.c, when an allocation fails or is
 *                         withdrawn, before it is freed (.alloc, .err: a
 *                         negative errno, .reason or NULL).
 *   OBSERVE_FLOW_MADE     flows/alloc.c, when an allocation was accepted and
 *                         its flow handed out (.alloc, .flow).
 *
 * ORDER: observers run in the order they subscribed, which is the order of
 * the module table (src/daemon/modules.c). An observer may emit other events
 * (they run nested) but must not unsubscribe. Subscribing happens in a
 * module's init; there is no unsubscribe.
 */
#pragma once

struct alloc;
struct client;
struct flow;
struct ipcfd;

enum observe_kind {
        OBSERVE_CLIENT_GONE,
        OBSERVE_NAME_CHANGED,
        OBSERVE_FLOW_ENDED,
        OBSERVE_CHILD,
        OBSERVE_ALLOC_ASKED,
        OBSERVE_ALLOC_FAILED,
        OBSERVE_FLOW_MADE,
        OBSERVE_KINDS_,
};

/* Observers per event kind (a fixed table: modules are few). */
#define OBSERVERS_MAX 8

typedef struct observe_ev {
        enum observe_kind kind;
        struct client *client;   /* CLIENT_GONE */
        const char *name;        /* NAME_CHANGED */
        struct flow *flow;       /* FLOW_ENDED, FLOW_MADE */
        int side;                /* FLOW_ENDED: 0 or 1 */
        struct alloc *alloc;     /* ALLOC_*, FLOW_MADE */
        int err;                 /* ALLOC_FAILED: negative errno */
        const char *reason;      /* ALLOC_FAILED: or NULL */
} observe_ev;

typedef void (*observer_fn)(struct ipcfd *d, const observe_ev *ev);

/* Subscribe fn to kind. Returns 0 or -ENOSPC (OBSERVERS_MAX reached). */
int observe(struct ipcfd *d, enum observe_kind kind, observer_fn fn);

/* Run every observer of ev->kind, in subscription order. */
void observe_emit(struct ipcfd *d, const observe_ev *ev);
