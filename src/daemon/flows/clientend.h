/*
 * clientend.h — the client end of a flow: a side held by a process on the
 * control socket (flow.h, ENDS).
 *
 * The side gets the FLOW message with its five descriptors (on the client's
 * connection as the reply to its ACCEPT, on an inbox's registration socket,
 * or — the requester's side — on the allocation's reply socket, sent by
 * alloc.c), is listed among what the client holds ("flow sides"), is ended
 * with IPCF_END_DEALLOC by the client's DEALLOC, and with
 * IPCF_END_PEER_DIED ("peer died") by the client's death.
 */
#pragma once

#include "daemon/flows/flow.h"

struct client;
struct request;

/* Where a client end's FLOW goes (flow_end_spec.arg): the reply to rq (its
 * connection, its seq), or sock with seq. */
typedef struct client_delivery {
        struct request *rq;            /* the ACCEPT being answered, or NULL */
        int sock;                      /* when rq is NULL */
        uint32_t seq;
} client_delivery;

/* Fill e for client c (identity, user, its list of sides; ops). dl may be
 * NULL when the caller delivers the FLOW itself (the requester's side). */
void client_end(flow_end_spec *e, struct client *c, client_delivery *dl);

/* The client holding side s, or NULL if s is not a client end. */
struct client *flow_side_client(const flow_side *s);

/* The flows module's part for client ends (its init): DEALLOC, and peer
 * death on OBSERVE_CLIENT_GONE. */
int client_end_init(ipcfd *d);
