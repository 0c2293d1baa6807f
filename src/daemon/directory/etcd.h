/*
 * etcd.h — an asynchronous client for etcd's v3 API, through etcd's JSON
 * gateway (HTTP/1.1 POST of JSON to /v3/...), on libcurl's multi interface
 * driven by the daemon's loop. It never blocks the loop: sockets are watched
 * by loop_io, curl's timeouts by a loop_timer.
 *
 * CALLS: etcd_call() posts a JSON body to a path ("/v3/kv/range", ...) and
 * calls back once with the parsed response or an error. Every call has a
 * deadline: it is tried on the current endpoint, and on a transport failure
 * (connection refused or reset, TLS refused, no answer within
 * attempt_timeout_ms, etcd answering UNAVAILABLE) on the next one, round
 * robin, until one answers or the deadline passes. An answer that is not
 * etcd's (not a JSON object, or past ETCD_BODY_MAX) moves to the next
 * endpoint at once; when as many answers as there are endpoints were so,
 * the call fails with -EPROTO (or -EMSGSIZE). All calls the directory makes are idempotent or
 * harmless when repeated (a lease granted twice: the spare one expires).
 *
 * STREAMS: etcd_stream() opens a long-lived request (a watch) on the current
 * endpoint: each JSON object the gateway writes is handed to frame_fn; the
 * stream ends with end_fn once (error or closed). No retry: the owner
 * reopens it (after etcd_endpoint_failed() if the endpoint is to blame; a
 * stream that failed or carried what is not etcd's has moved on already).
 *
 * ERRORS (negative errno, in callbacks):
 *   -ENOLINK    no endpoint answered before the deadline (etcd unreachable)
 *   -EACCES     etcd refused (authentication, permission: gRPC 7 and 16)
 *   -ENOENT     not found (gRPC 5: e.g. an expired lease)
 *   -ERANGE     revision compacted (gRPC 11)
 *   -EINVAL     etcd said the request was invalid (gRPC 3)
 *   -EPROTO     the answer was not a JSON object (from as many attempts as
 *               endpoints), or a stream carried what is not etcd's
 *   -EMSGSIZE   the answer (or one stream frame) passed its bound (the same)
 *   -EREMOTEIO  any other error etcd reported
 *
 * BOUNDS: ETCD_PENDING_MAX calls and streams at once (more: -EAGAIN),
 * ETCD_BODY_MAX bytes per answer, ETCD_FRAME_MAX per stream frame,
 * ETCD_ENDPOINTS_MAX endpoints.
 *
 * OWNERSHIP: a call's handle is valid until its callback has returned or it
 * is cancelled; callbacks may start or cancel other calls, never free the
 * client. The JSON handed to a callback is borrowed for the callback only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/core/loop.h"

struct json_object;

#define ETCD_ENDPOINTS_MAX 16
#define ETCD_URL_MAX 256
#define ETCD_PENDING_MAX 4096
#define ETCD_BODY_MAX (32u << 20)
#define ETCD_FRAME_MAX (8u << 20)
#define ETCD_ATTEMPT_TIMEOUT_DEFAULT_MS 1000u
#define ETCD_ERR_MAX 512

typedef struct etcd_opts {
        const char *endpoints[ETCD_ENDPOINTS_MAX]; /* "http://127.0.0.1:2379", "https://..." */
        size_t n_endpoints;
        const char *ca_file;    /* PEM CA bundle to check etcd's certificate (NULL: system's) */
        const char *cert_file;  /* PEM client certificate (NULL: none) */
        const char *key_file;   /* its private key */
        uint32_t attempt_timeout_ms; /* one try on one endpoint; 0: the default */
} etcd_opts;

typedef struct etcd etcd;
typedef struct etcd_req etcd_req;

/* err == 0: resp is the answer (a JSON object, borrowed). */
typedef void (*etcd_done_fn)(void *ctx, int err, struct json_object *resp);
/* One JSON object of a stream (borrowed). */
typedef void (*etcd_frame_fn)(void *ctx, struct json_object *frame);

/* The state of the connection, for `ipcf hosts` and tests. */
typedef struct etcd_health {
        char endpoint[ETCD_URL_MAX];  /* the current endpoint */
        bool reachable;               /* the last attempt anywhere succeeded */
        char last_error[ETCD_ERR_MAX];/* "" if none yet */
        uint64_t last_ok_ns;          /* CLOCK_MONOTONIC of the last success, 0: never */
        uint64_t failovers;           /* times the current endpoint moved on */
        size_t pending;               /* calls and streams in progress */
} etcd_health;

/* Copies opts (strings included). Returns 0 or -errno (-EINVAL: no endpoint,
 * an endpoint that is not http:// or https://, or too long). */
int etcd_new(loop *l, const etcd_opts *opts, etcd **ret);
/* Cancels everything (no callbacks) and frees. Accepts NULL; returns NULL. */
etcd *etcd_free(etcd *e);

/* POST body (JSON text, copied) to path. fn is called exactly once, never
 * from inside etcd_call(). deadline_ns: CLOCK_MONOTONIC. ret (may be NULL)
 * receives the handle for etcd_cancel(). Returns 0, -EAGAIN (too many
 * pending), -ENOMEM. */
int etcd_call(etcd *e, const char *path, const char *body, uint64_t deadline_ns,
              etcd_done_fn fn, void *ctx, etcd_req **ret);

/* Open a stream on the current endpoint. frame_fn per JSON object; end_fn
 * (resp NULL) once when it ends: -ENOLINK if the endpoint failed or closed,
 * else the error etcd put in the stream. Returns as etcd_call(). */
int etcd_stream(etcd *e, const char *path, const char *body, etcd_frame_fn frame_fn,
                etcd_done_fn end_fn, void *ctx, etcd_req **ret);

/* POST body to path on the current endpoint and wait for the answer, at
 * most timeout_ms: for a daemon on its way out, whose loop no longer runs.
 * Returns 0 (HTTP 200), -ENOLINK (no answer), -EREMOTEIO, -ENOMEM. */
int etcd_call_now(etcd *e, const char *path, const char *body, long timeout_ms);

/* Stop a call or stream; its callback is not called. */
void etcd_cancel(etcd_req *r);

/* The owner of a stream or call saw the current endpoint misbehave (silent
 * past a bound, no leader): move on to the next one. */
void etcd_endpoint_failed(etcd *e, const char *why);

/* Inside a callback (a call's answer or a stream's frame): that answer was
 * not etcd's (a shape etcd never sends). Its endpoint is to blame: if it is
 * still the current one, the next becomes current (as a transport failure;
 * last_error says why). */
void etcd_answer_bad(etcd *e, const char *why);

void etcd_health_get(const etcd *e, etcd_health *ret);
/* The index of the current endpoint (it changes when one fails). */
size_t etcd_current(const etcd *e);
