/*
 * test-rpc-xdr.c — the XDR code ipcf-idl generates, checked against an
 * independent oracle: rpcgen + libtirpc, from the same tests/rpc/alltypes.x
 * (every construct of RFC 4506 §6).
 *
 * The generated C types follow rpcgen's mapping, so one value (built here
 * with rpcgen's header) is handed to both encoders: the bytes must be equal.
 * Each side then decodes the other's bytes, and the value it decodes must
 * encode, through the other side again, to the same bytes (so the decoded
 * value is the value). Then the hostile cases: every truncation of every
 * encoding, lengths over their bounds, bad bools, enums, union cases,
 * padding, NULs in strings, left-over bytes, deep nesting, huge counts.
 * Leaks are caught by the ASan build.
 */
#include <rpc/rpc.h>

#include "alltypes.h" /* rpcgen's */
#include "ipcf.h"
#include "support/test.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The generated functions, declared over rpcgen's identical types. */
#define GEN_DECL(T)                                  \
        int T##_encode(ipcf_xdr *x, const T *v);     \
        int T##_decode(ipcf_xdr *x, T *v);           \
        void T##_free(T *v);
#define EACH_TYPE(X) \
        X(color) X(intvec) X(uvec) X(name) X(anystr) X(blob) X(digest) X(odd) X(hypers) X(names) \
        X(scalars) X(arrays) X(node) X(result) X(by_color) X(maybe) X(by_uint) X(everything)
EACH_TYPE(GEN_DECL)
GEN_DECL(tree)

/* ---- random values (rpcgen's representation) ------------------------------ */

static uint64_t rng;

static uint64_t rnd(void) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

static uint32_t below(uint32_t n) {
        return n ? (uint32_t)(rnd() % n) : 0;
}

static char *rnd_string(uint32_t max) {
        uint32_t n = below(max + 1);
        char *s = malloc(n + 1);
        for (uint32_t i = 0; i < n; i++)
                s[i] = (char)(' ' + below(95));
        s[n] = 0;
        return s;
}

static char *rnd_bytes(uint32_t n) {
        char *p = n ? malloc(n) : NULL;
        for (uint32_t i = 0; i < n; i++)
                p[i] = (char)rnd();
        return p;
}

static void fill_color(color *c) {
        static const color all[] = { RED, GREEN, BLUE, FAR, BIG };
        *c = all[below(5)];
}

static void fill_intvec(intvec *v) {
        v->intvec_len = below(MAXLIST + 1);
        v->intvec_val = v->intvec_len ? malloc(v->intvec_len * sizeof(int)) : NULL;
        for (u_int i = 0; i < v->intvec_len; i++)
                v->intvec_val[i] = (int)rnd();
}

static void fill_uvec(uvec *v) {
        v->uvec_len = below(40);
        v->uvec_val = v->uvec_len ? malloc(v->uvec_len * sizeof(u_int)) : NULL;
        for (u_int i = 0; i < v->uvec_len; i++)
                v->uvec_val[i] = (u_int)rnd();
}

static void fill_name(name *n) { *n = rnd_string(MAXNAME); }
static void fill_anystr(anystr *s) { *s = rnd_string(below(2) ? 3 : 300); }

static void fill_blob(blob *b) {
        b->blob_len = below(2) ? below(9) : below(5000);
        b->blob_val = rnd_bytes(b->blob_len);
}

static void fill_digest(digest *d) {
        for (int i = 0; i < 20; i++)
                (*d)[i] = (char)rnd();
}

static void fill_odd(odd *o) {
        for (int i = 0; i < 3; i++)
                (*o)[i] = (char)rnd();
}

static void fill_hypers(hypers *h) {
        for (int i = 0; i < 3; i++)
                (*h)[i] = (quad_t)rnd();
}

static void fill_names(names *n) {
        n->names_len = below(SMALL + 1);
        n->names_val = n->names_len ? malloc(n->names_len * sizeof(name)) : NULL;
        for (u_int i = 0; i < n->names_len; i++)
                fill_name(&n->names_val[i]);
}

static void fill_scalars(scalars *s) {
        s->i = (int)rnd();
        s->u = (u_int)rnd();
        s->h = (quad_t)rnd();
        s->uh = rnd();
        s->f = (float)(int32_t)rnd() / 7.0f;
        s->d = (double)(int64_t)rnd() / 3.0;
        s->b = (bool_t)below(2);
        fill_color(&s->c);
}

static void fill_arrays(arrays *a) {
        for (int i = 0; i < 4; i++)
                a->fixed_ints[i] = (int)rnd();
        for (int i = 0; i < 5; i++)
                a->fixed_bytes[i] = (char)rnd();
        a->fixed_h[0] = rnd();
        a->fixed_h[1] = rnd();
        a->colors.colors_len = below(4);
        a->colors.colors_val = a->colors.colors_len ? malloc(a->colors.colors_len * sizeof(color)) : NULL;
        for (u_int i = 0; i < a->colors.colors_len; i++)
                fill_color(&a->colors.colors_val[i]);
        a->small.small_len = below(8);
        a->small.small_val = rnd_bytes(a->small.small_len);
        a->label = rnd_string(MAXNAME);
        a->many.many_len = below(4);
        a->many.many_val = a->many.many_len ? malloc(a->many.many_len * sizeof(scalars)) : NULL;
        for (u_int i = 0; i < a->many.many_len; i++)
                fill_scalars(&a->many.many_val[i]);
        fill_digest(&a->sums[0]);
        fill_digest(&a->sums[1]);
        a->groups.groups_len = below(3);
        a->groups.groups_val = a->groups.groups_len ? malloc(a->groups.groups_len * sizeof(names)) : NULL;
        for (u_int i = 0; i < a->groups.groups_len; i++)
                fill_names(&a->groups.groups_val[i]);
}

static void fill_node(node *n) {
        n->value = (int)rnd();
        fill_name(&n->tag);
        n->next = NULL;
        if (below(3)) {
                n->next = malloc(sizeof(node));
                fill_node(n->next);
        }
}

static void fill_result(result *r) {
        static const int st[] = { 0, 1, 2, -5, 9, -1000 };
        r->status = st[below(6)];
        switch (r->status) {
        case 0: fill_scalars(&r->result_u.ok); break;
        case 1: case 2: r->result_u.why = rnd_string(64); break;
        case -5: break;
        default:
                r->result_u.raw.raw_len = below(17);
                r->result_u.raw.raw_val = rnd_bytes(r->result_u.raw.raw_len);
        }
}

static void fill_by_color(by_color *b) {
        b->c = (color)below(3);
        switch (b->c) {
        case RED: b->by_color_u.r = (int)rnd(); break;
        case GREEN: b->by_color_u.g = (quad_t)rnd(); break;
        default: fill_arrays(&b->by_color_u.b);
        }
}

static void fill_maybe(maybe *m) {
        m->present = (bool_t)below(2);
        if (m->present)
                fill_node(&m->maybe_u.n);
}

static void fill_by_uint(by_uint *b) {
        b->k = below(2) ? 4000000000u : 7;
        if (b->k == 7)
                fill_odd(&b->by_uint_u.o);
        else
                b->by_uint_u.big = (double)rnd();
}

static void fill_everything(everything *e) {
        fill_scalars(&e->s);
        fill_arrays(&e->a);
        e->list = NULL;
        if (below(2)) {
                e->list = malloc(sizeof(node));
                fill_node(e->list);
        }
        fill_result(&e->r1);
        fill_result(&e->r2);
        fill_by_color(&e->bc);
        fill_maybe(&e->m);
        fill_by_uint(&e->bu);
        fill_intvec(&e->iv);
        fill_uvec(&e->uv);
        fill_name(&e->n);
        fill_anystr(&e->any);
        fill_blob(&e->bl);
        fill_digest(&e->dg);
        fill_odd(&e->od);
        fill_hypers(&e->hs);
        e->results.results_len = below(5);
        e->results.results_val = e->results.results_len ? malloc(e->results.results_len * sizeof(result)) : NULL;
        for (u_int i = 0; i < e->results.results_len; i++)
                fill_result(&e->results.results_val[i]);
        e->opt_node = NULL;
}

/* ---- the comparison --------------------------------------------------------- */

#define BUFMAX (1u << 20)

/* libtirpc's encoding of v into buf; its length. */
static size_t tirpc_encode(xdrproc_t proc, void *v, char *buf) {
        XDR x;
        xdrmem_create(&x, buf, BUFMAX, XDR_ENCODE);
        CHECK(proc(&x, v));
        size_t n = xdr_getpos(&x);
        xdr_destroy(&x);
        return n;
}

typedef struct codec {
        const char *name;
        size_t size;
        void (*fill)(void *);
        xdrproc_t tirpc;
        int (*enc)(ipcf_xdr *, const void *);
        int (*dec)(ipcf_xdr *, void *);
        void (*free)(void *);
} codec;

#define CODEC(T)                                                                                  \
        { #T, sizeof(T), (void (*)(void *))fill_##T, (xdrproc_t)xdr_##T,                          \
          (int (*)(ipcf_xdr *, const void *))T##_encode, (int (*)(ipcf_xdr *, void *))T##_decode, \
          (void (*)(void *))T##_free },
static const codec codecs[] = { EACH_TYPE(CODEC) };

static unsigned quick(unsigned n) {
        return getenv("IPCF_TEST_QUICK") ? n / 5 + 1 : n;
}

/* One value of c: both encoders agree; each decodes the other's bytes back
 * to the same value. Returns the encoding's length (in a, which stays). */
static size_t compare_one(const codec *c, char *a, char *b) {
        void *v = calloc(1, c->size), *w = calloc(1, c->size), *u = calloc(1, c->size);
        c->fill(v);
        size_t na = tirpc_encode(c->tirpc, v, a);
        ipcf_xdr x;
        ipcf_xdr_encoder(&x, b, BUFMAX);
        CHECK_OK(c->enc(&x, v));
        if (x.pos != na || memcmp(x.buf, a, na) != 0)
                test_fail(__FILE__, __LINE__, "%s: generated encoding differs from rpcgen's (%zu vs %zu bytes)",
                          c->name, x.pos, na);
        ipcf_xdr_release(&x);
        /* ours decodes theirs; theirs re-encodes what we decoded: same bytes */
        ipcf_xdr d;
        ipcf_xdr_decoder(&d, a, na);
        CHECK_OK(c->dec(&d, w));
        CHECK_OK(ipcf_xdr_end(&d));
        CHECK_EQ(tirpc_encode(c->tirpc, w, b), na);
        CHECK_MEM(a, b, na);
        /* theirs decodes ours; ours re-encodes it: same bytes */
        XDR t;
        xdrmem_create(&t, a, (u_int)na, XDR_DECODE);
        CHECK(c->tirpc(&t, u, 0));
        xdr_destroy(&t);
        ipcf_xdr_encoder(&x, NULL, 0); /* and an encoder that grows from nothing */
        CHECK_OK(c->enc(&x, u));
        CHECK_EQ(x.pos, na);
        CHECK_MEM(x.buf, a, na);
        ipcf_xdr_release(&x);
        xdr_free(c->tirpc, v);
        xdr_free(c->tirpc, u);
        c->free(w);
        c->free(w); /* freeing twice is harmless: it was zeroed */
        free(v);
        free(w);
        free(u);
        return na;
}

TEST(every_type_encodes_as_rpcgen_and_libtirpc_do_both_ways) {
        char *a = malloc(BUFMAX), *b = malloc(BUFMAX);
        rng = 0x9e3779b97f4a7c15ull;
        unsigned rounds = quick(300);
        for (size_t k = 0; k < ARRAY_LEN(codecs); k++)
                for (unsigned i = 0; i < rounds; i++)
                        compare_one(&codecs[k], a, b);
        free(a);
        free(b);
}

/* Every proper prefix of a valid encoding fails cleanly (-EBADMSG), and so
 * does the encoding with bytes added; the value is left zeroed. */
TEST(truncated_and_overlong_input_fails_cleanly) {
        char *a = malloc(BUFMAX), *b = malloc(BUFMAX);
        rng = 42;
        unsigned rounds = quick(40);
        for (size_t k = 0; k < ARRAY_LEN(codecs); k++) {
                const codec *c = &codecs[k];
                for (unsigned i = 0; i < rounds; i++) {
                        size_t n = compare_one(c, a, b);
                        void *w = malloc(c->size);
                        size_t step = n > 600 ? n / 300 : 1;
                        for (size_t cut = 0; cut < n; cut += step) {
                                ipcf_xdr d;
                                ipcf_xdr_decoder(&d, a, cut);
                                int r = c->dec(&d, w);
                                if (r == 0)
                                        r = ipcf_xdr_end(&d);
                                CHECK_ERR(r, -EBADMSG);
                                if (d.err == 0) /* decoded a shorter valid value: free it */
                                        c->free(w);
                                else
                                        for (size_t z = 0; z < c->size; z++)
                                                CHECK(((char *)w)[z] == 0);
                        }
                        a[n] = 0;
                        ipcf_xdr d;
                        ipcf_xdr_decoder(&d, a, n + 4);
                        CHECK_OK(c->dec(&d, w));
                        CHECK_ERR(ipcf_xdr_end(&d), -EBADMSG);
                        c->free(w);
                        free(w);
                }
        }
        free(a);
        free(b);
}

static int decode_words(const codec *c, const uint32_t *words, size_t n) {
        uint32_t be[64];
        for (size_t i = 0; i < n; i++)
                be[i] = htonl(words[i]);
        void *w = calloc(1, c->size);
        ipcf_xdr d;
        ipcf_xdr_decoder(&d, be, n * 4);
        int r = c->dec(&d, w);
        if (r == 0)
                r = ipcf_xdr_end(&d);
        c->free(w);
        free(w);
        return r;
}

static const codec *find_codec(const char *type_name) {
        for (size_t k = 0; k < ARRAY_LEN(codecs); k++)
                if (!strcmp(codecs[k].name, type_name))
                        return &codecs[k];
        return NULL;
}

TEST(values_outside_their_types_are_refused) {
        /* bool 2, enum value not declared, union case without arm */
        CHECK_OK(decode_words(find_codec("color"), (uint32_t[]){ 2 }, 1));
        CHECK_ERR(decode_words(find_codec("color"), (uint32_t[]){ 3 }, 1), -EBADMSG);
        CHECK_OK(decode_words(find_codec("color"), (uint32_t[]){ (uint32_t)-100 }, 1));
        CHECK_OK(decode_words(find_codec("maybe"), (uint32_t[]){ 0 }, 1));
        CHECK_ERR(decode_words(find_codec("maybe"), (uint32_t[]){ 2 }, 1), -EBADMSG);
        CHECK_ERR(decode_words(find_codec("by_uint"), (uint32_t[]){ 8, 0 }, 2), -EBADMSG);
        CHECK_OK(decode_words(find_codec("by_uint"), (uint32_t[]){ 7, 0x01020300 }, 2));
        /* padding must be zero: opaque odd[3] */
        CHECK_ERR(decode_words(find_codec("odd"), (uint32_t[]){ 0x01020301 }, 1), -EBADMSG);
        /* lengths over bounds: name<16>, intvec<32>, names<8> */
        CHECK_OK(decode_words(find_codec("name"), (uint32_t[]){ 16, 0x41414141, 0x41414141, 0x41414141, 0x41414141 }, 5));
        CHECK_ERR(decode_words(find_codec("name"), (uint32_t[]){ 17, 0x41414141, 0x41414141, 0x41414141, 0x41414141, 0x41000000 }, 6), -EBADMSG);
        CHECK_ERR(decode_words(find_codec("intvec"), (uint32_t[]){ 33 }, 1), -EBADMSG);
        CHECK_ERR(decode_words(find_codec("names"), (uint32_t[]){ 9 }, 1), -EBADMSG);
        /* a NUL inside a string */
        CHECK_ERR(decode_words(find_codec("name"), (uint32_t[]){ 3, 0x41004100 }, 2), -EBADMSG);
        /* a count beyond what the input holds fails before allocating:
         * uvec<> says 2^32-1 elements in 8 bytes */
        CHECK_ERR(decode_words(find_codec("uvec"), (uint32_t[]){ 0xffffffffu, 1 }, 2), -EBADMSG);
        CHECK_ERR(decode_words(find_codec("blob"), (uint32_t[]){ 0xfffffffdu, 1 }, 2), -EBADMSG);
        /* union default arm: status 77 -> raw<16> */
        CHECK_OK(decode_words(find_codec("result"), (uint32_t[]){ 77, 2, 0x41420000 }, 3));
        CHECK_ERR(decode_words(find_codec("result"), (uint32_t[]){ 77, 17 }, 2), -EBADMSG);
}

TEST(encoding_refuses_values_outside_their_types) {
        ipcf_xdr x;
        char buf[256];
        color c = (color)5;
        ipcf_xdr_encoder(&x, buf, sizeof(buf));
        CHECK_ERR(color_encode(&x, &c), -EINVAL);
        CHECK_ERR(ipcf_xdr_put_u32(&x, 1), -EINVAL); /* sticky */
        name n = NULL;
        ipcf_xdr_encoder(&x, buf, sizeof(buf));
        CHECK_ERR(name_encode(&x, &n), -EINVAL);
        n = "seventeen chars!!";
        ipcf_xdr_encoder(&x, buf, sizeof(buf));
        CHECK_ERR(name_encode(&x, &n), -EINVAL);
        int32_t many[33] = { 0 };
        intvec iv = { 33, many };
        ipcf_xdr_encoder(&x, buf, sizeof(buf));
        CHECK_ERR(intvec_encode(&x, &iv), -EINVAL);
        by_uint bu = { .k = 9 };
        ipcf_xdr_encoder(&x, buf, sizeof(buf));
        CHECK_ERR(by_uint_encode(&x, &bu), -EINVAL);
        intvec none = { 3, NULL };
        ipcf_xdr_encoder(&x, buf, sizeof(buf));
        CHECK_ERR(intvec_encode(&x, &none), -EINVAL);
        /* a bool's C value other than 0 encodes as TRUE, as rpcgen's does */
        scalars s = { .b = 7, .c = RED };
        ipcf_xdr_encoder(&x, buf, sizeof(buf));
        CHECK_OK(scalars_encode(&x, &s));
        CHECK_EQ(ntohl(*(uint32_t *)(buf + 36)), 1);
}

/* A list of n nodes, encoded. */
static size_t list_bytes(char *buf, unsigned n) {
        node *head = NULL;
        for (unsigned i = 0; i < n; i++) {
                node *x = calloc(1, sizeof(*x));
                x->value = (int)i;
                x->tag = strdup("t");
                x->next = head;
                head = x;
        }
        size_t len = tirpc_encode((xdrproc_t)xdr_node, head, buf);
        xdr_free((xdrproc_t)xdr_node, (char *)head);
        free(head);
        return len;
}

/* Free a list the caller built (not the generated code's). */
static void free_built(node *head) {
        while (head) {
                node *nx = head->next;
                free(head);
                head = nx;
        }
}

/* A list (a struct whose last member points to its own type) is walked, not
 * recursed into: any length encodes and decodes, within the decoding budget,
 * to rpcgen's bytes, and freeing it takes no stack per node either. */
TEST(lists_of_any_length_encode_and_decode) {
        char *buf = malloc(BUFMAX);
        unsigned lens[] = { 1, 100, 2000, 5000 };
        for (size_t k = 0; k < ARRAY_LEN(lens); k++) {
                size_t n = list_bytes(buf, lens[k]);
                node v;
                ipcf_xdr d;
                ipcf_xdr_decoder(&d, buf, n);
                CHECK_OK(node_decode(&d, &v));
                CHECK_EQ(d.depth, 0);
                unsigned count = 0;
                for (node *p = &v; p; p = p->next)
                        CHECK_EQ(p->value, (int)(lens[k] - 1 - count++));
                CHECK_EQ(count, lens[k]);
                ipcf_xdr e;
                ipcf_xdr_encoder(&e, NULL, 0);
                CHECK_OK(node_encode(&e, &v));
                CHECK_EQ(e.pos, n);
                CHECK_EQ(e.depth, 0);
                CHECK(memcmp(e.buf, buf, n) == 0);
                ipcf_xdr_release(&e);
                node_free(&v);
                /* cut anywhere: a clean error, nothing leaks (ASan) */
                for (size_t cut = 0; cut < n && cut < 4096; cut += 4) {
                        ipcf_xdr_decoder(&d, buf, cut);
                        CHECK_ERR(node_decode(&d, &v), -EBADMSG);
                        CHECK(v.tag == NULL && v.next == NULL);
                }
        }
        /* a million nodes: encoded, decoded, freed (the stack would not take
         * a million frames) */
        node *head = NULL;
        for (int i = 0; i < 1000000; i++) {
                node *nd = calloc(1, sizeof(*nd));
                nd->value = i;
                nd->tag = "";
                nd->next = head;
                head = nd;
        }
        ipcf_xdr e;
        ipcf_xdr_encoder(&e, NULL, 0);
        CHECK_OK(node_encode(&e, head));
        CHECK_EQ(e.pos, 12u * 1000000);
        free_built(head);
        node v;
        ipcf_xdr d;
        ipcf_xdr_decoder(&d, e.buf, e.pos);
        CHECK_OK(node_decode(&d, &v));
        unsigned count = 0;
        for (node *p = &v; p; p = p->next)
                count++;
        CHECK_EQ(count, 1000000);
        node_free(&v);
        /* a budget too small for the list: -ENOBUFS, what was made freed */
        ipcf_xdr_decoder(&d, e.buf, e.pos);
        d.budget = 1 << 20;
        CHECK_ERR(node_decode(&d, &v), -ENOBUFS);
        CHECK(v.next == NULL);
        ipcf_xdr_release(&e);
        free(buf);
}

/* Other recursion still nests, and nesting is bounded both ways: a tree
 * 2,000 deep to the left fails -ELOOP (decoding rpcgen's bytes, and
 * encoding: what would not decode is not sent), while 100,000 nodes to the
 * right (its last member: a list) are fine. */
static tree *spine(unsigned n, bool left) {
        tree *t = NULL;
        for (unsigned i = 0; i < n; i++) {
                tree *p = calloc(1, sizeof(*p));
                p->value = (int)i;
                *(left ? &p->left : &p->right) = t;
                t = p;
        }
        return t;
}

static void free_spine(tree *t) {
        while (t) {
                tree *nx = t->left ? t->left : t->right;
                free(t);
                t = nx;
        }
}

TEST(nesting_is_bounded) {
        char *buf = malloc(BUFMAX);
        tree *deep = spine(2000, true);
        size_t n = tirpc_encode((xdrproc_t)xdr_tree, deep, buf);
        tree v;
        ipcf_xdr d;
        ipcf_xdr_decoder(&d, buf, n);
        CHECK_ERR(tree_decode(&d, &v), -ELOOP);
        CHECK(v.left == NULL && v.right == NULL);
        ipcf_xdr_decoder(&d, buf, n);
        d.max_depth = 5000;
        CHECK_OK(tree_decode(&d, &v));
        tree_free(&v);
        ipcf_xdr e;
        ipcf_xdr_encoder(&e, NULL, 0);
        CHECK_ERR(tree_encode(&e, deep), -ELOOP);
        ipcf_xdr_release(&e);
        ipcf_xdr_encoder(&e, NULL, 0);
        e.max_depth = 5000;
        CHECK_OK(tree_encode(&e, deep));
        CHECK_EQ(e.pos, n);
        CHECK(memcmp(e.buf, buf, n) == 0);
        ipcf_xdr_release(&e);
        free_spine(deep);
        /* a left spine of 100 under each of 3 right nodes: depth 100 */
        tree *wide = spine(3, false);
        for (tree *p = wide; p; p = p->right)
                p->left = spine(100, true);
        n = tirpc_encode((xdrproc_t)xdr_tree, wide, buf);
        ipcf_xdr_decoder(&d, buf, n);
        CHECK_OK(tree_decode(&d, &v));
        ipcf_xdr_encoder(&e, NULL, 0);
        CHECK_OK(tree_encode(&e, &v));
        CHECK_EQ(e.pos, n);
        CHECK(memcmp(e.buf, buf, n) == 0);
        ipcf_xdr_release(&e);
        tree_free(&v);
        for (tree *p = wide; p; p = p->right) {
                free_spine(p->left);
                p->left = NULL;
        }
        free_spine(wide);
        tree *right = spine(100000, false);
        ipcf_xdr_encoder(&e, NULL, 0);
        CHECK_OK(tree_encode(&e, right));
        CHECK_EQ(e.pos, 12u * 100000);
        free_spine(right);
        ipcf_xdr_decoder(&d, e.buf, e.pos);
        CHECK_OK(tree_decode(&d, &v));
        CHECK_EQ(d.depth, 0);
        tree_free(&v);
        ipcf_xdr_release(&e);
        free(buf);
}

/* The bound exactly: IPCF_XDR_MAX_DEPTH structs one inside another encode
 * and decode; one more is refused both ways. (python/ipcf/rpc.py counts the
 * same: python/tests/test_rpc.py checks 256 and 257 of this tree.) */
TEST(nesting_bound_is_exact) {
        char *buf = malloc(BUFMAX);
        for (unsigned n = IPCF_XDR_MAX_DEPTH; n <= IPCF_XDR_MAX_DEPTH + 1; n++) {
                bool fits = n == IPCF_XDR_MAX_DEPTH;
                tree *t = spine(n, true), v;
                size_t len = tirpc_encode((xdrproc_t)xdr_tree, t, buf);
                ipcf_xdr e, d;
                ipcf_xdr_encoder(&e, NULL, 0);
                CHECK_EQ(tree_encode(&e, t), fits ? 0 : -ELOOP);
                ipcf_xdr_release(&e);
                ipcf_xdr_decoder(&d, buf, len);
                CHECK_EQ(tree_decode(&d, &v), fits ? 0 : -ELOOP);
                if (fits)
                        tree_free(&v);
                free_spine(t);
        }
        free(buf);
}

TEST(decoding_allocates_within_its_budget) {
        /* 8 KiB of input claiming a blob of 8 KiB: fine; with a budget of
         * 1 KiB: refused before allocating */
        size_t n = 8192;
        char *buf = calloc(1, n + 4);
        uint32_t len = htonl((uint32_t)n);
        memcpy(buf, &len, 4);
        blob b;
        ipcf_xdr d;
        ipcf_xdr_decoder(&d, buf, n + 4);
        CHECK_OK(blob_decode(&d, &b));
        CHECK_EQ(b.blob_len, n);
        blob_free(&b);
        ipcf_xdr_decoder(&d, buf, n + 4);
        d.budget = 1024;
        CHECK_ERR(blob_decode(&d, &b), -ENOBUFS);
        CHECK(b.blob_val == NULL);
        free(buf);
}

TEST(scatter_gather_encoding_refers_to_large_opaque_data) {
        size_t big = 100000;
        char *data = malloc(big);
        test_fill(data, big, 7);
        blob b = { (u_int)big, data };
        everything e;
        memset(&e, 0, sizeof(e));
        rng = 5;
        fill_everything(&e);
        free(e.bl.blob_val);
        e.bl = b;
        char *flat = malloc(BUFMAX);
        size_t n = tirpc_encode((xdrproc_t)xdr_everything, &e, flat);
        ipcf_xdr x;
        char small[64];
        ipcf_xdr_encoder_sg(&x, small, sizeof(small), 4096);
        CHECK_OK(everything_encode(&x, &e));
        size_t nseg;
        const ipcf_xdr_seg *seg = ipcf_xdr_segments(&x, &nseg);
        CHECK_EQ(x.total, n);
        size_t at = 0;
        bool referenced = false;
        for (size_t i = 0; i < nseg; i++) {
                const char *p = seg[i].ptr ? seg[i].ptr : (const char *)x.buf + seg[i].off;
                referenced |= seg[i].ptr == data;
                CHECK_MEM(p, flat + at, seg[i].len);
                at += seg[i].len;
        }
        CHECK_EQ(at, n);
        CHECK(referenced);
        ipcf_xdr_release(&x);
        e.bl.blob_val = NULL;
        xdr_free((xdrproc_t)xdr_everything, (char *)&e);
        free(data);
        free(flat);
}

/* ipcf_xdr_borrow on a decoder of the user's: large opaque data is left in
 * the input, and the generated T_free (ipcf_xdr_free) leaves it alone, also
 * when decoding fails after it lent some out (hostile test, h2: only the
 * RPC server marked the input as lent, so T_free of a value decoded so
 * freed a pointer into the caller's buffer: "free(): invalid pointer"). */
TEST(borrowed_opaque_data_is_not_freed) {
        size_t big = 100000;
        char *data = malloc(big);
        test_fill(data, big, 9);
        everything e;
        memset(&e, 0, sizeof(e));
        rng = 6;
        fill_everything(&e);
        free(e.bl.blob_val);
        e.bl = (blob){ (u_int)big, data };
        ipcf_xdr x;
        ipcf_xdr_encoder(&x, NULL, 0);
        CHECK_OK(everything_encode(&x, &e));
        e.bl.blob_val = NULL;
        xdr_free((xdrproc_t)xdr_everything, (char *)&e);
        everything got;
        ipcf_xdr d;
        ipcf_xdr_decoder(&d, x.buf, x.pos);
        ipcf_xdr_borrow(&d, 4096);
        CHECK_OK(everything_decode(&d, &got));
        CHECK(got.bl.blob_val > (char *)x.buf && got.bl.blob_val < (char *)x.buf + x.pos); /* lent */
        CHECK_MEM(got.bl.blob_val, data, big);
        everything_free(&got);
        /* cut short after the blob: decoding fails and frees what it made */
        ipcf_xdr_decoder(&d, x.buf, x.pos - 4);
        ipcf_xdr_borrow(&d, 4096);
        CHECK_ERR(everything_decode(&d, &got), -EBADMSG);
        ipcf_xdr_release(&d);
        /* a decoder that does not borrow copies, and its value is freed */
        ipcf_xdr_decoder(&d, x.buf, x.pos);
        CHECK_OK(everything_decode(&d, &got));
        CHECK(got.bl.blob_val < (char *)x.buf || got.bl.blob_val >= (char *)x.buf + x.pos);
        everything_free(&got);
        ipcf_xdr_release(&x);
        free(data);
}
