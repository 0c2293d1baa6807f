/*
 * etcd.c — the etcd v3 JSON-gateway client on libcurl's multi interface
 * (see etcd.h).
 *
 * HOW CURL MEETS THE LOOP: curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION: one `etcd_sock` with a loop_io each) and when it
 * wants to be woken (CURLMOPT_TIMERFUNCTION: one loop_timer). Events go back
 * with curl_multi_socket_action(); finished transfers are collected after it
 * returns. Nothing is ever called back from inside a curl callback: stream
 * frames are parsed in curl's write callback into a queue and handed out
 * after curl returns, so a callback may start or cancel calls freely.
 *
 * STATES OF A CALL: QUEUED (waiting for one of ETCD_INFLIGHT_MAX slots, its
 * timer at the deadline) -> ACTIVE (in curl, bounded by the attempt timeout)
 * -> on a transport failure BACKOFF (timer) or ACTIVE again on the next
 * endpoint -> DONE (callback, then freed after the loop round). Streams are
 * ACTIVE from the start and take no slot.
 *
 * INVARIANTS: a req is on e->reqs from creation until it is finished or
 * cancelled; it is in curl's multi iff r->in_multi; its memory is released
 * with loop_defer_free(), so a pointer held by a delivery loop in this round
 * stays readable (r->dead tells it to stop).
 */
#include "daemon/directory/etcd.h"

#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "common/util.h"
#include "daemon/core/dlist.h"
#include "daemon/directory/etcdmsg.h"

#define ETCD_INFLIGHT_MAX 16    /* unary calls in curl at once (= connections) */
#define ETCD_BACKOFF_NS (100ull * 1000000u) /* after every endpoint failed in a row */
#define ETCD_FRAMES_MAX 1024    /* parsed frames queued on a stream before delivery */
#define ETCD_JSON_DEPTH 16

enum req_state { REQ_QUEUED, REQ_ACTIVE, REQ_BACKOFF, REQ_DONE };

struct etcd_req {
        etcd *e;
        struct dlist link;        /* e->reqs */
        struct dlist queue_link;  /* e->queue while QUEUED */
        struct dlist deliver_link;/* e->deliver while frames wait */
        enum req_state state;
        bool stream, in_multi, dead, too_big;
        CURL *easy;
        struct curl_slist *hdrs;
        char path[64];
        char *body;
        uint64_t deadline;        /* calls only */
        size_t ep;                /* endpoint of the current attempt */
        unsigned failed_in_row;   /* attempts failed since one succeeded or a backoff */
        unsigned bad_answers;     /* attempts answered with something that is not etcd's */
        loop_timer timer;         /* QUEUED: deadline; BACKOFF: retry */
        char *buf;                /* calls: the answer so far */
        size_t len, cap;
        json_tokener *tok;        /* streams: the frame being parsed */
        size_t frame_bytes;
        json_object **frames;     /* streams: parsed, not yet delivered */
        size_t n_frames;
        etcd_done_fn done;
        etcd_frame_fn frame;
        void *ctx;
};

typedef struct etcd_sock {
        loop_io io;
        etcd *e;
        struct dlist link;        /* e->socks */
} etcd_sock;

struct etcd {
        loop *l;
        CURLM *multi;
        loop_timer timer;
        char *endpoints[ETCD_ENDPOINTS_MAX];
        size_t n_endpoints, cur;
        char *ca_file, *cert_file, *key_file;
        uint32_t attempt_ms;
        struct dlist reqs, queue, deliver, socks;
        size_t n_reqs, n_inflight;
        bool reachable;
        size_t answer_ep;         /* the endpoint of the answer being handed out */
        char last_error[ETCD_ERR_MAX];
        uint64_t last_ok_ns, failovers;
};

static void etcd_after_curl(etcd *e);
static void req_start_attempt(etcd_req *r);

/* ---- curl <-> loop ------------------------------------------------------- */

static void sock_io_fn(loop_io *io, uint32_t events) {
        etcd_sock *s = container_of(io, etcd_sock, io);
        etcd *e = s->e;
        int mask = 0, running;
        if (events & EPOLLIN)
                mask |= CURL_CSELECT_IN;
        if (events & EPOLLOUT)
                mask |= CURL_CSELECT_OUT;
        if (events & (EPOLLERR | EPOLLHUP))
                mask |= CURL_CSELECT_ERR;
        curl_multi_socket_action(e->multi, io->fd, mask, &running);
        etcd_after_curl(e);
}

static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
        etcd *e = userp;
        etcd_sock *s = socketp;
        (void)easy;
        if (what == CURL_POLL_REMOVE) {
                if (s) {
                        dlist_del(&s->link);
                        loop_io_del(e->l, &s->io);
                        curl_multi_assign(e->multi, fd, NULL);
                        loop_defer_free(e->l, s);
                }
                return 0;
        }
        uint32_t ev = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
        if (!s) {
                s = calloc(1, sizeof(*s));
                if (!s)
                        return -1;
                s->e = e;
                if (loop_io_add(e->l, &s->io, fd, ev, sock_io_fn) < 0) {
                        free(s);
                        return -1;
                }
                curl_multi_assign(e->multi, fd, s);
                dlist_add_tail(&e->socks, &s->link);
                return 0;
        }
        return loop_io_mod(e->l, &s->io, ev) < 0 ? -1 : 0;
}

static void curl_timer_fn(loop_timer *t) {
        etcd *e = container_of(t, etcd, timer);
        int running;
        curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        etcd_after_curl(e);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp) {
        etcd *e = userp;
        (void)multi;
        if (timeout_ms < 0) {
                loop_timer_cancel(e->l, &e->timer);
                return 0;
        }
        return loop_timer_arm(e->l, &e->timer, now_ns() + (uint64_t)timeout_ms * 1000000u) < 0 ? -1 : 0;
}

/* ---- endpoints and health ------------------------------------------------ */

/* last_error = "ENDPOINT: why". */
static void set_error(etcd *e, const char *endpoint, const char *why) {
        snprintf(e->last_error, sizeof(e->last_error), "%.255s: %.200s", endpoint, why);
}

void etcd_endpoint_failed(etcd *e, const char *why) {
        set_error(e, e->endpoints[e->cur], why);
        e->reachable = false;
        if (e->n_endpoints > 1) {
                e->cur = (e->cur + 1) % e->n_endpoints;
                e->failovers++;
        }
}

/* An attempt on endpoint ep failed for a transport reason. Move on only if
 * ep is still the current one (other calls may have moved already). */
static void endpoint_attempt_failed(etcd *e, size_t ep, const char *why) {
        if (ep == e->cur)
                etcd_endpoint_failed(e, why);
        else
                set_error(e, e->endpoints[ep], why);
}

void etcd_health_get(const etcd *e, etcd_health *ret) {
        memset(ret, 0, sizeof(*ret));
        str_copy(ret->endpoint, e->endpoints[e->cur], sizeof(ret->endpoint));
        ret->reachable = e->reachable;
        str_copy(ret->last_error, e->last_error, sizeof(ret->last_error));
        ret->last_ok_ns = e->last_ok_ns;
        ret->failovers = e->failovers;
        ret->pending = e->n_reqs;
}

size_t etcd_current(const etcd *e) { return e->cur; }

/* ---- requests ------------------------------------------------------------ */

/* Release everything of r but its memory (deferred: see INVARIANTS). */
static void req_release(etcd_req *r) {
        etcd *e = r->e;
        r->dead = true;
        r->state = REQ_DONE;
        loop_timer_cancel(e->l, &r->timer);
        if (r->in_multi) {
                curl_multi_remove_handle(e->multi, r->easy);
                r->in_multi = false;
                if (!r->stream)
                        e->n_inflight--;
        }
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
        curl_slist_free_all(r->hdrs);
        r->hdrs = NULL;
        dlist_del(&r->queue_link);
        dlist_del(&r->deliver_link);
        dlist_del(&r->link);
        e->n_reqs--;
        free(r->body);
        free(r->buf);
        if (r->tok)
                json_tokener_free(r->tok);
        for (size_t i = 0; i < r->n_frames; i++)
                json_object_put(r->frames[i]);
        free(r->frames);
        loop_defer_free(e->l, r);
}

void etcd_cancel(etcd_req *r) {
        if (r && !r->dead)
                req_release(r);
}

/* Finish a call or stream: callback once, then release. */
static void req_finish(etcd_req *r, int err, json_object *resp) {
        etcd_done_fn fn = r->done;
        void *ctx = r->ctx;
        r->e->answer_ep = r->ep;
        req_release(r);
        fn(ctx, err, resp);
}

void etcd_answer_bad(etcd *e, const char *why) { endpoint_attempt_failed(e, e->answer_ep, why); }

static size_t write_call_cb(char *data, size_t size, size_t n, void *userp) {
        etcd_req *r = userp;
        size_t len = size * n;
        if (r->len + len > ETCD_BODY_MAX) {
                r->too_big = true;
                return 0;
        }
        if (r->len + len + 1 > r->cap) {
                size_t nc = MAX(r->cap * 2, r->len + len + 1);
                nc = MAX(nc, (size_t)4096);
                char *b = realloc(r->buf, nc);
                if (!b)
                        return 0;
                r->buf = b;
                r->cap = nc;
        }
        memcpy(r->buf + r->len, data, len);
        r->len += len;
        r->buf[r->len] = 0;
        return len;
}

/* Streams: parse complete JSON objects out of the bytes as they come. */
static size_t write_stream_cb(char *data, size_t size, size_t n, void *userp) {
        etcd_req *r = userp;
        etcd *e = r->e;
        size_t len = size * n, off = 0;
        while (off < len) {
                json_object *o = json_tokener_parse_ex(r->tok, data + off, (int)MIN(len - off, (size_t)1 << 30));
                enum json_tokener_error err = json_tokener_get_error(r->tok);
                if (err == json_tokener_continue) {
                        r->frame_bytes += len - off;
                        if (r->frame_bytes > ETCD_FRAME_MAX) {
                                r->too_big = true;
                                return 0;
                        }
                        break;
                }
                if (err != json_tokener_success || !o)
                        return 0; /* not JSON: the transfer fails (CURLE_WRITE_ERROR) */
                off += json_tokener_get_parse_end(r->tok);
                json_tokener_reset(r->tok);
                r->frame_bytes = 0;
                if (r->n_frames == ETCD_FRAMES_MAX) {
                        json_object_put(o);
                        r->too_big = true;
                        return 0;
                }
                if (!r->frames) {
                        r->frames = calloc(ETCD_FRAMES_MAX, sizeof(*r->frames));
                        if (!r->frames) {
                                json_object_put(o);
                                return 0;
                        }
                }
                r->frames[r->n_frames++] = o;
                if (!dlist_linked(&r->deliver_link))
                        dlist_add_tail(&e->deliver, &r->deliver_link);
        }
        return len;
}

static int req_setup_easy(etcd_req *r) {
        etcd *e = r->e;
        r->easy = curl_easy_init();
        if (!r->easy)
                return -ENOMEM;
        r->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
        struct curl_slist *h2 = r->hdrs ? curl_slist_append(r->hdrs, "Expect:") : NULL;
        if (!h2)
                return -ENOMEM;
        r->hdrs = h2;
        CURL *c = r->easy;
        curl_easy_setopt(c, CURLOPT_PRIVATE, r);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->hdrs);
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body));
        curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, r->stream ? write_stream_cb : write_call_cb);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
        if (e->ca_file)
                curl_easy_setopt(c, CURLOPT_CAINFO, e->ca_file);
        if (e->cert_file)
                curl_easy_setopt(c, CURLOPT_SSLCERT, e->cert_file);
        if (e->key_file)
                curl_easy_setopt(c, CURLOPT_SSLKEY, e->key_file);
        if (r->stream) {
                r->tok = json_tokener_new_ex(ETCD_JSON_DEPTH);
                if (!r->tok)
                        return -ENOMEM;
                json_tokener_set_flags(r->tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
                curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)e->attempt_ms);
                /* A stream that goes silent is the owner's to judge (etcd_endpoint_failed). */
        }
        return 0;
}

static void req_timer_fn(loop_timer *t);

static etcd_req *req_new(etcd *e, const char *path, const char *body, bool stream) {
        if (e->n_reqs >= ETCD_PENDING_MAX || strlen(path) >= sizeof(((etcd_req *)0)->path))
                return NULL;
        etcd_req *r = calloc(1, sizeof(*r));
        if (!r)
                return NULL;
        r->e = e;
        r->stream = stream;
        dlist_init(&r->link);
        dlist_init(&r->queue_link);
        dlist_init(&r->deliver_link);
        loop_timer_init(&r->timer, req_timer_fn);
        str_copy(r->path, path, sizeof(r->path));
        r->body = strdup(body);
        dlist_add_tail(&e->reqs, &r->link);
        e->n_reqs++;
        if (!r->body || req_setup_easy(r) < 0) {
                req_release(r);
                return NULL;
        }
        return r;
}

/* Put r into curl on the current endpoint. */
static int req_add_to_curl(etcd_req *r, long timeout_ms) {
        etcd *e = r->e;
        char url[ETCD_URL_MAX + 64];
        r->ep = e->cur;
        snprintf(url, sizeof(url), "%s%s", e->endpoints[r->ep], r->path);
        curl_easy_setopt(r->easy, CURLOPT_URL, url);
        if (!r->stream) {
                curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
                curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
        }
        r->len = 0;
        r->too_big = false;
        if (curl_multi_add_handle(e->multi, r->easy) != CURLM_OK)
                return -ENOMEM;
        r->in_multi = true;
        r->state = REQ_ACTIVE;
        if (!r->stream)
                e->n_inflight++;
        return 0;
}

/* Start calls waiting for a slot, oldest first. */
static void etcd_pump(etcd *e) {
        while (e->n_inflight < ETCD_INFLIGHT_MAX && !dlist_empty(&e->queue)) {
                etcd_req *r = dlist_entry(e->queue.next, etcd_req, queue_link);
                dlist_del(&r->queue_link);
                loop_timer_cancel(e->l, &r->timer);
                req_start_attempt(r);
        }
}

/* One attempt of a call: bounded by the attempt timeout and the deadline. */
static void req_start_attempt(etcd_req *r) {
        etcd *e = r->e;
        uint64_t now = now_ns();
        if (now >= r->deadline) {
                req_finish(r, -ENOLINK, NULL);
                return;
        }
        if (e->n_inflight >= ETCD_INFLIGHT_MAX) {
                r->state = REQ_QUEUED;
                dlist_add_tail(&e->queue, &r->queue_link);
                loop_timer_arm(e->l, &r->timer, r->deadline);
                return;
        }
        uint64_t left_ms = (r->deadline - now + 999999u) / 1000000u;
        long ms = (long)MIN(left_ms, (uint64_t)e->attempt_ms);
        if (req_add_to_curl(r, ms) < 0)
                req_finish(r, -ENOMEM, NULL);
}

static void req_timer_fn(loop_timer *t) {
        etcd_req *r = container_of(t, etcd_req, timer);
        if (r->state == REQ_QUEUED) { /* the deadline passed in the queue */
                req_finish(r, -ENOLINK, NULL);
                return;
        }
        req_start_attempt(r); /* BACKOFF over */
}

/* A transport failure of a call's attempt: next endpoint, or back off after
 * a whole round of them, or give up at the deadline. */
static void req_retry(etcd_req *r) {
        etcd *e = r->e;
        uint64_t now = now_ns();
        if (now >= r->deadline) {
                req_finish(r, -ENOLINK, NULL);
                return;
        }
        if (++r->failed_in_row >= e->n_endpoints) {
                r->failed_in_row = 0;
                r->state = REQ_BACKOFF;
                loop_timer_arm(e->l, &r->timer, MIN(now + ETCD_BACKOFF_NS, r->deadline));
                return;
        }
        req_start_attempt(r);
}

/* The member of r's attempt answered something that is not etcd's (err:
 * -EPROTO not a JSON object, -EMSGSIZE past ETCD_BODY_MAX): it is to blame,
 * the next endpoint is tried at once; once as many answered so as there are
 * endpoints, the call fails with err (a member that answers is not retried
 * forever: no backoff makes garbage better). */
static void call_bad_answer(etcd_req *r, int err, const char *why) {
        etcd *e = r->e;
        endpoint_attempt_failed(e, r->ep, why);
        if (++r->bad_answers >= e->n_endpoints || now_ns() >= r->deadline) {
                req_finish(r, err, NULL);
                return;
        }
        req_start_attempt(r);
}

static void call_completed(etcd_req *r, CURLcode cc) {
        etcd *e = r->e;
        if (r->too_big) {
                call_bad_answer(r, -EMSGSIZE, "answer past its bound");
                return;
        }
        if (cc != CURLE_OK) {
                endpoint_attempt_failed(e, r->ep, curl_easy_strerror(cc));
                req_retry(r);
                return;
        }
        json_object *o = r->len ? etcd_json_parse(r->buf, r->len) : NULL;
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                call_bad_answer(r, -EPROTO, "answer is not a JSON object");
                return;
        }
        char msg[ETCD_ERR_MAX];
        int err = etcd_error_of(o, msg, sizeof(msg));
        if (err == -EAGAIN) { /* UNAVAILABLE and the like: this member cannot serve */
                json_object_put(o);
                endpoint_attempt_failed(e, r->ep, msg);
                req_retry(r);
                return;
        }
        e->reachable = true;
        e->last_ok_ns = now_ns();
        if (err < 0)
                set_error(e, e->endpoints[r->ep], msg);
        req_finish(r, err, err < 0 ? NULL : o);
        json_object_put(o);
}

static void stream_completed(etcd_req *r, CURLcode cc) {
        etcd *e = r->e;
        int err = -ENOLINK;
        if (r->too_big) { /* the member is to blame: the owner reopens elsewhere */
                err = -EMSGSIZE;
                endpoint_attempt_failed(e, r->ep, "stream frame past its bound");
        } else if (cc == CURLE_WRITE_ERROR) {
                err = -EPROTO;
                endpoint_attempt_failed(e, r->ep, "stream is not JSON");
        } else if (cc != CURLE_OK)
                endpoint_attempt_failed(e, r->ep, curl_easy_strerror(cc));
        else
                set_error(e, e->endpoints[r->ep], "stream closed by etcd");
        req_finish(r, err, NULL);
}

/* Hand out the frames parsed during curl's work; streams carry
 * {"result": ...} or {"error": ...}. */
static void deliver_frames(etcd *e) {
        while (!dlist_empty(&e->deliver)) {
                etcd_req *r = dlist_entry(e->deliver.next, etcd_req, deliver_link);
                dlist_del(&r->deliver_link);
                size_t i = 0;
                for (; i < r->n_frames && !r->dead; i++) {
                        json_object *f = r->frames[i], *res;
                        r->frames[i] = NULL;
                        char msg[ETCD_ERR_MAX];
                        int err = etcd_error_of(f, msg, sizeof(msg));
                        if (err < 0) {
                                set_error(e, e->endpoints[r->ep], msg);
                                if (err == -EAGAIN) {
                                        endpoint_attempt_failed(e, r->ep, msg);
                                        err = -ENOLINK;
                                }
                                req_finish(r, err, NULL);
                        } else if (json_object_object_get_ex(f, "result", &res) &&
                                   json_object_is_type(res, json_type_object)) {
                                e->reachable = true;
                                e->last_ok_ns = now_ns();
                                e->answer_ep = r->ep;
                                r->frame(r->ctx, res);
                        } else {
                                endpoint_attempt_failed(e, r->ep, "stream frame is not etcd's");
                                req_finish(r, -EPROTO, NULL);
                        }
                        json_object_put(f);
                }
                if (!r->dead) {
                        for (; i < r->n_frames; i++)
                                json_object_put(r->frames[i]);
                        r->n_frames = 0;
                }
        }
}

/* After curl returned: deliver stream frames, collect finished transfers,
 * start queued calls. */
static void etcd_after_curl(etcd *e) {
        deliver_frames(e);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(e->multi, &left))) {
                if (m->msg != CURLMSG_DONE)
                        continue;
                etcd_req *r = NULL;
                CURLcode cc = m->data.result;
                curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
                curl_multi_remove_handle(e->multi, r->easy);
                r->in_multi = false;
                if (r->stream) {
                        deliver_frames(e); /* frames of the last bytes first */
                        if (!r->dead)
                                stream_completed(r, cc);
                } else {
                        e->n_inflight--;
                        call_completed(r, cc);
                }
        }
        etcd_pump(e);
}

/* ---- public -------------------------------------------------------------- */

int etcd_call_now(etcd *e, const char *path, const char *body, long timeout_ms) {
        etcd_req *r = req_new(e, path, body, false);
        if (!r)
                return -ENOMEM;
        char url[ETCD_URL_MAX + 64];
        snprintf(url, sizeof(url), "%s%s", e->endpoints[e->cur], path);
        curl_easy_setopt(r->easy, CURLOPT_URL, url);
        curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
        CURLcode cc = curl_easy_perform(r->easy);
        long status = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        req_release(r);
        return cc != CURLE_OK ? -ENOLINK : status == 200 ? 0 : -EREMOTEIO;
}

int etcd_call(etcd *e, const char *path, const char *body, uint64_t deadline_ns,
              etcd_done_fn fn, void *ctx, etcd_req **ret) {
        if (e->n_reqs >= ETCD_PENDING_MAX)
                return -EAGAIN;
        etcd_req *r = req_new(e, path, body, false);
        if (!r)
                return -ENOMEM;
        r->deadline = deadline_ns;
        r->done = fn;
        r->ctx = ctx;
        /* Never call back from here: even a deadline already past is told
         * from the loop (the queue timer fires at once). */
        r->state = REQ_QUEUED;
        dlist_add_tail(&e->queue, &r->queue_link);
        loop_timer_arm(e->l, &r->timer, deadline_ns);
        if (ret)
                *ret = r;
        if (e->n_inflight < ETCD_INFLIGHT_MAX && now_ns() < deadline_ns) {
                dlist_del(&r->queue_link);
                loop_timer_cancel(e->l, &r->timer);
                uint64_t left_ms = (deadline_ns - now_ns() + 999999u) / 1000000u;
                if (req_add_to_curl(r, (long)MIN(left_ms, (uint64_t)e->attempt_ms)) < 0) {
                        req_release(r);
                        return -ENOMEM;
                }
        }
        return 0;
}

int etcd_stream(etcd *e, const char *path, const char *body, etcd_frame_fn frame_fn,
                etcd_done_fn end_fn, void *ctx, etcd_req **ret) {
        if (e->n_reqs >= ETCD_PENDING_MAX)
                return -EAGAIN;
        etcd_req *r = req_new(e, path, body, true);
        if (!r)
                return -ENOMEM;
        r->frame = frame_fn;
        r->done = end_fn;
        r->ctx = ctx;
        if (req_add_to_curl(r, 0) < 0) {
                req_release(r);
                return -ENOMEM;
        }
        if (ret)
                *ret = r;
        return 0;
}

static bool endpoint_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n >= ETCD_URL_MAX)
                return false;
        if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] <= ' ' || s[i] > '~')
                        return false;
        return true;
}

static char *dup_or_null(const char *s, bool *fail) {
        if (!s || !*s)
                return NULL;
        char *d = strdup(s);
        if (!d)
                *fail = true;
        return d;
}

int etcd_new(loop *l, const etcd_opts *opts, etcd **ret) {
        if (opts->n_endpoints == 0 || opts->n_endpoints > ETCD_ENDPOINTS_MAX)
                return -EINVAL;
        for (size_t i = 0; i < opts->n_endpoints; i++)
                if (!opts->endpoints[i] || !endpoint_valid(opts->endpoints[i]))
                        return -EINVAL;
        static bool curl_ready;
        if (!curl_ready) {
                if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                        return -ENOMEM;
                curl_ready = true;
        }
        etcd *e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->l = l;
        dlist_init(&e->reqs);
        dlist_init(&e->queue);
        dlist_init(&e->deliver);
        dlist_init(&e->socks);
        loop_timer_init(&e->timer, curl_timer_fn);
        e->attempt_ms = opts->attempt_timeout_ms ? opts->attempt_timeout_ms : ETCD_ATTEMPT_TIMEOUT_DEFAULT_MS;
        bool fail = false;
        for (size_t i = 0; i < opts->n_endpoints; i++) {
                /* "http://h:p/" and "http://h:p" name the same endpoint. */
                e->endpoints[i] = strdup(opts->endpoints[i]);
                if (!e->endpoints[i]) {
                        fail = true;
                        break;
                }
                e->n_endpoints++;
                size_t n = strlen(e->endpoints[i]);
                while (n > 8 && e->endpoints[i][n - 1] == '/')
                        e->endpoints[i][--n] = 0;
        }
        e->ca_file = dup_or_null(opts->ca_file, &fail);
        e->cert_file = dup_or_null(opts->cert_file, &fail);
        e->key_file = dup_or_null(opts->key_file, &fail);
        e->multi = fail ? NULL : curl_multi_init();
        if (!e->multi) {
                etcd_free(e);
                return -ENOMEM;
        }
        curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
        curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
        curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
        curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
        curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, (long)(ETCD_INFLIGHT_MAX + 4));
        *ret = e;
        return 0;
}

etcd *etcd_free(etcd *e) {
        if (!e)
                return NULL;
        while (!dlist_empty(&e->reqs))
                req_release(dlist_entry(e->reqs.next, etcd_req, link));
        loop_timer_cancel(e->l, &e->timer);
        /* Unwatch curl's sockets while they are still open (after cleanup
         * their numbers may belong to someone else). */
        dlist_for_each(pos, &e->socks)
                loop_io_del(e->l, &dlist_entry(pos, etcd_sock, link)->io);
        if (e->multi)
                curl_multi_cleanup(e->multi);
        /* What cleanup closed without telling sock_cb. */
        while (!dlist_empty(&e->socks)) {
                etcd_sock *s = dlist_entry(e->socks.next, etcd_sock, link);
                dlist_del(&s->link);
                loop_defer_free(e->l, s);
        }
        for (size_t i = 0; i < e->n_endpoints; i++)
                free(e->endpoints[i]);
        free(e->ca_file);
        free(e->cert_file);
        free(e->key_file);
        free(e);
        return NULL;
}
