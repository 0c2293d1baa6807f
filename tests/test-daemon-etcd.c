/*
 * test-daemon-etcd.c — the daemon's etcd client (src/daemon/directory/etcd.c)
 * against a real three-member etcd cluster on loopback, driven by the
 * daemon's own event loop: calls, the JSON gateway's base64, a watch
 * stream, fail-over when a member dies, the distinct error when the whole
 * cluster is down (within the deadline), and hostile "etcd" endpoints (one
 * that accepts and never answers, one that answers garbage or too much).
 */
#include <arpa/inet.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/directory/etcd.h"
#include "daemon/directory/etcdmsg.h"
#include "support/dirtest.h"
#include "support/etcdcluster.h"
#include "support/loopwait.h"
#include "support/test.h"

typedef struct result {
        bool done;
        int err;
        char *text;      /* the answer as JSON text */
        uint64_t at_ns;
} result;

static void on_done(void *ctx, int err, json_object *resp) {
        result *r = ctx;
        r->done = true;
        r->err = err;
        r->at_ns = now_ns();
        if (resp)
                r->text = strdup(json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN));
}

static bool is_done(void *ctx) { return ((result *)ctx)->done; }

/* Make a call and run the loop until it is answered (bounded). */
static result call(loop *l, etcd *e, const char *path, char *body, int deadline_ms) {
        result r = { 0 };
        CHECK(body);
        CHECK_OK(etcd_call(e, path, body, now_ns() + (uint64_t)deadline_ms * 1000000u, on_done, &r, NULL));
        free(body);
        CHECK(loop_wait(l, is_done, &r, deadline_ms + 5000));
        return r;
}

static etcd *client_of(loop *l, etcd_cluster *c, int first) {
        etcd_opts o = { .n_endpoints = (size_t)c->n, .attempt_timeout_ms = 500 };
        for (int i = 0; i < c->n; i++)
                o.endpoints[i] = c->client_url[(first + i) % c->n];
        etcd *e;
        CHECK_OK(etcd_new(l, &o, &e));
        return e;
}

/* Range-read key; returns the value decoded (static buffer) or NULL. */
static const char *get(loop *l, etcd *e, const char *key) {
        static char val[ETCD_VALUE_MAX + 1];
        result r = call(l, e, "/v3/kv/range", etcd_body_range(key, strlen(key), NULL, 0, 0, 0), 3000);
        CHECK_OK(r.err);
        json_object *o = etcd_json_parse(r.text, strlen(r.text)), *kvs;
        int64_t rev;
        bool more;
        CHECK_OK(etcd_range_decode(o, &rev, &more, &kvs));
        const char *ret = NULL;
        if (kvs && json_object_array_length(kvs) == 1) {
                static etcd_kv kv;
                CHECK_OK(etcd_kv_decode(json_object_array_get_idx(kvs, 0), &kv));
                CHECK_EQ(kv.key_len, strlen(key));
                CHECK_MEM(kv.key, key, kv.key_len);
                memcpy(val, kv.value, kv.value_len);
                val[kv.value_len] = 0;
                ret = val;
        }
        json_object_put(o);
        free(r.text);
        return ret;
}

TEST_TIMEOUT(etcd_put_get_delete, 120) {
        etcd_cluster c;
        etcd_cluster_start(&c, 3);
        loop *l;
        CHECK_OK(loop_new(&l));
        etcd *e = client_of(l, &c, 0);

        /* A key and value with bytes JSON and base64 must carry intact. */
        const char key[] = "/t/k\"\\é";
        const char val[] = "{\"v\":1}\n\t\x01 end";
        result r = call(l, e, "/v3/kv/put", etcd_body_put(key, strlen(key), val, strlen(val), 0), 3000);
        CHECK_OK(r.err);
        free(r.text);
        const char *got = get(l, e, key);
        CHECK(got && !strcmp(got, val));
        /* Every member serves it (a linearizable read through each). */
        for (int i = 1; i < 3; i++) {
                etcd *ei = client_of(l, &c, i);
                got = get(l, ei, key);
                CHECK(got && !strcmp(got, val));
                etcd_free(ei);
        }
        r = call(l, e, "/v3/kv/deleterange", etcd_body_delete(key, strlen(key)), 3000);
        CHECK_OK(r.err);
        CHECK(strstr(r.text, "\"deleted\":\"1\""));
        free(r.text);
        CHECK(get(l, e, key) == NULL);

        /* etcd's own errors come back as errnos: a keepalive of no lease. */
        r = call(l, e, "/v3/lease/revoke", etcd_body_lease_id(12345), 3000);
        CHECK_ERR(r.err, -ENOENT);

        etcd_health h;
        etcd_health_get(e, &h);
        CHECK(h.reachable);
        CHECK(!strcmp(h.endpoint, c.client_url[0]));
        CHECK_EQ(h.pending, 0);
        etcd_free(e);
        loop_free(l);
        etcd_cluster_stop(&c);
}

typedef struct watch_seen {
        int puts, deletes, frames;
        bool created, ended;
        int end_err;
        char last_key[64];
} watch_seen;

static void on_frame(void *ctx, json_object *res) {
        watch_seen *w = ctx;
        etcd_watch_frame f;
        CHECK_OK(etcd_watch_decode(res, &f));
        w->frames++;
        w->created |= f.created;
        for (size_t i = 0; f.events && i < json_object_array_length(f.events); i++) {
                static etcd_kv kv;
                bool del;
                CHECK_OK(etcd_event_decode(json_object_array_get_idx(f.events, i), &del, &kv));
                if (del)
                        w->deletes++;
                else
                        w->puts++;
                memcpy(w->last_key, kv.key, MIN(kv.key_len, sizeof(w->last_key) - 1));
                w->last_key[MIN(kv.key_len, sizeof(w->last_key) - 1)] = 0;
        }
}

static void on_end(void *ctx, int err, json_object *resp) {
        watch_seen *w = ctx;
        w->ended = true;
        w->end_err = err;
}

static bool watch_created(void *ctx) { return ((watch_seen *)ctx)->created; }
static bool watch_two_events(void *ctx) { return ((watch_seen *)ctx)->puts + ((watch_seen *)ctx)->deletes >= 2; }
static bool watch_ended(void *ctx) { return ((watch_seen *)ctx)->ended; }

TEST_TIMEOUT(etcd_watch_stream_and_member_death, 120) {
        etcd_cluster c;
        etcd_cluster_start(&c, 3);
        loop *l;
        CHECK_OK(loop_new(&l));
        etcd *e = client_of(l, &c, 0);
        uint8_t end[8];
        size_t end_len = etcd_prefix_end("/w/", 3, end);
        char *body = etcd_body_watch("/w/", 3, end, end_len, 0);
        watch_seen w = { 0 };
        etcd_req *stream;
        CHECK_OK(etcd_stream(e, "/v3/watch", body, on_frame, on_end, &w, &stream));
        free(body);
        CHECK(loop_wait(l, watch_created, &w, 5000));

        /* Writes through another member reach the stream. */
        etcd *e2 = client_of(l, &c, 1);
        result r = call(l, e2, "/v3/kv/put", etcd_body_put("/w/a", 4, "1", 1, 0), 3000);
        CHECK_OK(r.err);
        free(r.text);
        r = call(l, e2, "/v3/kv/deleterange", etcd_body_delete("/w/a", 4), 3000);
        CHECK_OK(r.err);
        free(r.text);
        r = call(l, e2, "/v3/kv/put", etcd_body_put("/x/outside", 10, "1", 1, 0), 3000);
        CHECK_OK(r.err);
        free(r.text);
        CHECK(loop_wait(l, watch_two_events, &w, 5000));
        CHECK_EQ(w.puts, 1);
        CHECK_EQ(w.deletes, 1);
        CHECK(!strcmp(w.last_key, "/w/a"));

        /* The member the stream is on dies: the stream ends with -ENOLINK and
         * the client moves to the next endpoint; calls keep working. */
        etcd_cluster_kill(&c, 0);
        CHECK(loop_wait(l, watch_ended, &w, 5000));
        CHECK_ERR(w.end_err, -ENOLINK);
        r = call(l, e, "/v3/kv/put", etcd_body_put("/w/b", 4, "2", 1, 0), 5000);
        CHECK_OK(r.err);
        free(r.text);
        etcd_health h;
        etcd_health_get(e, &h);
        CHECK(strcmp(h.endpoint, c.client_url[0]) != 0);
        CHECK(h.failovers >= 1);
        CHECK(h.reachable);

        /* A stream cancelled by its owner says nothing more. */
        watch_seen w2 = { 0 };
        body = etcd_body_watch("/w/", 3, end, end_len, 0);
        CHECK_OK(etcd_stream(e, "/v3/watch", body, on_frame, on_end, &w2, &stream));
        free(body);
        CHECK(loop_wait(l, watch_created, &w2, 5000));
        etcd_cancel(stream);
        loop_wait(l, NULL, NULL, 100);
        CHECK(!w2.ended);

        etcd_free(e);
        etcd_free(e2);
        loop_free(l);
        etcd_cluster_stop(&c);
}

TEST_TIMEOUT(etcd_cluster_down_distinct_error_within_deadline, 120) {
        etcd_cluster c;
        etcd_cluster_start(&c, 3);
        loop *l;
        CHECK_OK(loop_new(&l));
        etcd *e = client_of(l, &c, 0);
        result r = call(l, e, "/v3/kv/put", etcd_body_put("/d/k", 4, "v", 1, 0), 3000);
        CHECK_OK(r.err);
        free(r.text);
        for (int i = 0; i < 3; i++)
                etcd_cluster_kill(&c, i);

        /* Every member refuses connections: -ENOLINK, not before the
         * deadline (it keeps trying) and not long after it. */
        uint64_t t0 = now_ns();
        r = call(l, e, "/v3/kv/range", etcd_body_range("/d/k", 4, NULL, 0, 0, 0), 800);
        CHECK_ERR(r.err, -ENOLINK);
        uint64_t took_ms = (r.at_ns - t0) / 1000000u;
        CHECK(took_ms >= 790);
        CHECK(took_ms < 800 + 3000); /* (a loaded machine's slack) */
        etcd_health h;
        etcd_health_get(e, &h);
        CHECK(!h.reachable);
        CHECK(h.last_error[0]);

        /* Two members back: a quorum, and the client finds them. */
        etcd_cluster_restart(&c, 1);
        etcd_cluster_restart(&c, 2);
        CHECK(etcd_cluster_wait_ready(&c, 1, 30000));
        r = call(l, e, "/v3/kv/range", etcd_body_range("/d/k", 4, NULL, 0, 0, 0), 10000);
        CHECK_OK(r.err);
        CHECK(strstr(r.text, "\"count\":\"1\""));
        free(r.text);
        etcd_free(e);
        loop_free(l);
        etcd_cluster_stop(&c);
}

/* A hostile endpoint on 127.0.0.1: accepts connections and then either
 * says nothing (mode 0), answers garbage (1), or answers a body past the
 * client's bound (2). Runs in a child until killed, on a socket of
 * dirtest_listen(). */
static int hostile_mode, hostile_fd;

static void hostile_serve(void *arg) {
        (void)arg;
        for (;;) {
                int c = accept(hostile_fd, NULL, NULL);
                if (c < 0)
                        continue;
                char buf[4096];
                if (read(c, buf, sizeof(buf)) <= 0) {
                        close(c);
                        continue;
                }
                if (hostile_mode == 0) {
                        pause(); /* never answers, keeps the connection */
                } else if (hostile_mode == 1) {
                        const char *g = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"a\":[1,]";
                        (void)!write(c, g, strlen(g));
                } else {
                        const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n";
                        (void)!write(c, h, strlen(h));
                        memset(buf, ' ', sizeof(buf));
                        for (size_t sent = 0; sent < 100000000u; sent += sizeof(buf))
                                if (write(c, buf, sizeof(buf)) <= 0)
                                        break;
                }
                close(c);
        }
}

TEST_TIMEOUT(etcd_hostile_endpoints, 120) {
        etcd_cluster c;
        etcd_cluster_start(&c, 1);
        loop *l;
        CHECK_OK(loop_new(&l));
        int port;
        char url[64];

        /* Silent first endpoint: each attempt is cut at attempt_timeout_ms
         * and the call goes on to the real member. */
        hostile_mode = 0;
        hostile_fd = dirtest_listen(&port);
        pid_t srv = test_fork(hostile_serve, NULL);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
        etcd_opts o = { .endpoints = { url, c.client_url[0] }, .n_endpoints = 2, .attempt_timeout_ms = 300 };
        etcd *e;
        CHECK_OK(etcd_new(l, &o, &e));
        uint64_t t0 = now_ns();
        result r = call(l, e, "/v3/kv/put", etcd_body_put("/h/k", 4, "v", 1, 0), 5000);
        CHECK_OK(r.err);
        free(r.text);
        CHECK((r.at_ns - t0) / 1000000u >= 290);
        etcd_health h;
        etcd_health_get(e, &h);
        CHECK(!strcmp(h.endpoint, c.client_url[0]));
        CHECK(strstr(h.last_error, url));
        etcd_free(e);
        kill(srv, SIGKILL);
        test_wait(srv, 5000);
        close(hostile_fd);

        /* Garbage, then a body past ETCD_BODY_MAX: alone, distinct errors
         * at once (a member that answered is not asked again and again);
         * before a real member, the call goes on to it at once. */
        for (hostile_mode = 1; hostile_mode <= 2; hostile_mode++) {
                hostile_fd = dirtest_listen(&port);
                srv = test_fork(hostile_serve, NULL);
                snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
                etcd_opts o1 = { .endpoints = { url }, .n_endpoints = 1, .attempt_timeout_ms = 5000 };
                CHECK_OK(etcd_new(l, &o1, &e));
                t0 = now_ns();
                r = call(l, e, "/v3/kv/range", etcd_body_range("/h/k", 4, NULL, 0, 0, 0), 10000);
                CHECK_ERR(r.err, hostile_mode == 1 ? -EPROTO : -EMSGSIZE);
                CHECK((r.at_ns - t0) / 1000000u < 5000);
                etcd_free(e);
                etcd_opts o2 = { .endpoints = { url, c.client_url[0] }, .n_endpoints = 2, .attempt_timeout_ms = 5000 };
                CHECK_OK(etcd_new(l, &o2, &e));
                r = call(l, e, "/v3/kv/range", etcd_body_range("/h/k", 4, NULL, 0, 0, 0), 10000);
                CHECK_OK(r.err);
                CHECK(strstr(r.text, "\"count\":\"1\""));
                free(r.text);
                etcd_health_get(e, &h);
                CHECK(!strcmp(h.endpoint, c.client_url[0]) && h.failovers == 1 && strstr(h.last_error, url));
                fprintf(stderr, "after a member answering %s: %s\n", hostile_mode == 1 ? "garbage" : "too much",
                        h.last_error);
                etcd_free(e);
                kill(srv, SIGKILL);
                test_wait(srv, 5000);
                close(hostile_fd);
        }

        /* Bad endpoints are refused at creation. */
        etcd_opts bad = { .endpoints = { "ftp://x" }, .n_endpoints = 1 };
        CHECK_ERR(etcd_new(l, &bad, &e), -EINVAL);
        etcd_opts none = { .n_endpoints = 0 };
        CHECK_ERR(etcd_new(l, &none, &e), -EINVAL);
        loop_free(l);
        etcd_cluster_stop(&c);
}

TEST_TIMEOUT(etcd_tls_client_certificate, 120) {
        etcd_cluster c;
        etcd_cluster_start_tls(&c, 3);
        loop *l;
        CHECK_OK(loop_new(&l));
        etcd_opts o = { .n_endpoints = 3, .attempt_timeout_ms = 1000, .ca_file = c.ca, .cert_file = c.cert,
                        .key_file = c.key };
        for (int i = 0; i < 3; i++)
                o.endpoints[i] = c.client_url[i];
        etcd *e;
        CHECK_OK(etcd_new(l, &o, &e));
        result r = call(l, e, "/v3/kv/put", etcd_body_put("/tls/k", 6, "v", 1, 0), 5000);
        CHECK_OK(r.err);
        free(r.text);
        const char *got = get(l, e, "/tls/k");
        CHECK(got && !strcmp(got, "v"));
        /* A watch stream over TLS too. */
        uint8_t end[8];
        size_t end_len = etcd_prefix_end("/tls/", 5, end);
        char *body = etcd_body_watch("/tls/", 5, end, end_len, 0);
        watch_seen w = { 0 };
        CHECK_OK(etcd_stream(e, "/v3/watch", body, on_frame, on_end, &w, NULL));
        free(body);
        CHECK(loop_wait(l, watch_created, &w, 5000));
        r = call(l, e, "/v3/kv/put", etcd_body_put("/tls/a", 6, "1", 1, 0), 5000);
        CHECK_OK(r.err);
        free(r.text);
        r = call(l, e, "/v3/kv/deleterange", etcd_body_delete("/tls/a", 6), 5000);
        CHECK_OK(r.err);
        free(r.text);
        CHECK(loop_wait(l, watch_two_events, &w, 5000));
        etcd_free(e);

        /* Without a client certificate, or without the CA: no answer, the
         * distinct error at the deadline, and the reason in the health. */
        for (int k = 0; k < 2; k++) {
                etcd_opts bad = o;
                if (k == 0)
                        bad.cert_file = bad.key_file = NULL;
                else
                        bad.ca_file = NULL;
                CHECK_OK(etcd_new(l, &bad, &e));
                r = call(l, e, "/v3/kv/range", etcd_body_range("/tls/k", 6, NULL, 0, 0, 0), 1500);
                CHECK_ERR(r.err, -ENOLINK);
                etcd_health h;
                etcd_health_get(e, &h);
                CHECK(!h.reachable);
                printf("    %s: %s\n", k == 0 ? "no client certificate" : "no CA", h.last_error);
                CHECK(h.last_error[0]);
                etcd_free(e);
        }
        /* Plain http to a TLS member gets nowhere either. */
        char plain[64];
        snprintf(plain, sizeof(plain), "http://%s:2379", c.host[0]);
        etcd_opts p = { .endpoints = { plain }, .n_endpoints = 1, .attempt_timeout_ms = 500 };
        CHECK_OK(etcd_new(l, &p, &e));
        r = call(l, e, "/v3/kv/range", etcd_body_range("/tls/k", 6, NULL, 0, 0, 0), 1000);
        CHECK(r.err < 0);
        etcd_free(e);
        loop_free(l);
        etcd_cluster_stop(&c);
}
