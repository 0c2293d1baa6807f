/*
 * test-efcp-noise.c — the Noise IK handshake (src/efcp/noise.c) against the
 * published test vectors of Noise_IK_25519_ChaChaPoly_SHA256
 * (tests/vectors/noise-ik.txt: cacophony's and snow's, sources named there):
 * every handshake message and transport message byte for byte, both sides,
 * and the handshake hash where the vector gives it. Then what must fail: a
 * flipped bit anywhere in either message, the wrong responder key, a
 * low-order ephemeral key, a truncated message. And the datagrams' keys
 * (noise_aead_key) against libsodium's one-shot calls, both ciphers.
 */
#include <errno.h>
#include <libgen.h>
#include <sodium.h>

#include "efcp/noise.h"
#include "support/test.h"

#define MAXV 4
#define MAXM 8

typedef struct vec {
        char source[32];
        uint8_t prologue[128], init_static[32], init_e[32], init_rs[32], resp_static[32], resp_e[32];
        size_t prologue_len;
        uint8_t hash[32];
        bool has_hash;
        int nmsg;
        uint8_t pt[MAXM][256], ct[MAXM][512];
        size_t ptlen[MAXM], ctlen[MAXM];
} vec;

static size_t unhex(const char *s, uint8_t *out, size_t cap) {
        if (!strcmp(s, "-"))
                return 0;
        size_t n = strlen(s) / 2;
        CHECK(n <= cap && strlen(s) % 2 == 0);
        for (size_t i = 0; i < n; i++)
                CHECK(sscanf(s + 2 * i, "%2hhx", &out[i]) == 1);
        return n;
}

static int load(vec *v) {
        char path[512];
        snprintf(path, sizeof(path), "%s", __FILE__);
        char dir[512];
        snprintf(dir, sizeof(dir), "%s/vectors/noise-ik.txt", dirname(path));
        FILE *f = fopen(dir, "r");
        if (!f)
                f = fopen("tests/vectors/noise-ik.txt", "r");
        CHECK(f);
        char line[2048], key[64], val[1024], val2[1024];
        int n = -1;
        while (fgets(line, sizeof(line), f)) {
                if (line[0] == '#' || line[0] == '\n')
                        continue;
                int k = sscanf(line, "%63s %1023s %1023s", key, val, val2);
                vec *c = n >= 0 ? &v[n] : NULL;
                if (!strcmp(key, "vector")) {
                        CHECK(n + 1 < MAXV);
                        c = &v[++n];
                        memset(c, 0, sizeof(*c));
                        snprintf(c->source, sizeof(c->source), "%.31s", val);
                } else if (!c || !strcmp(key, "end")) {
                        continue;
                } else if (!strcmp(key, "init_prologue")) {
                        c->prologue_len = unhex(val, c->prologue, sizeof(c->prologue));
                } else if (!strcmp(key, "init_static")) {
                        unhex(val, c->init_static, 32);
                } else if (!strcmp(key, "init_ephemeral")) {
                        unhex(val, c->init_e, 32);
                } else if (!strcmp(key, "init_remote_static")) {
                        unhex(val, c->init_rs, 32);
                } else if (!strcmp(key, "resp_static")) {
                        unhex(val, c->resp_static, 32);
                } else if (!strcmp(key, "resp_ephemeral")) {
                        unhex(val, c->resp_e, 32);
                } else if (!strcmp(key, "handshake_hash")) {
                        unhex(val, c->hash, 32);
                        c->has_hash = true;
                } else if (!strcmp(key, "msg") && k == 3) {
                        CHECK(c->nmsg < MAXM);
                        c->ptlen[c->nmsg] = unhex(val, c->pt[c->nmsg], sizeof(c->pt[0]));
                        c->ctlen[c->nmsg] = unhex(val2, c->ct[c->nmsg], sizeof(c->ct[0]));
                        c->nmsg++;
                }
        }
        fclose(f);
        return n + 1;
}

/* Both sides at the state a vector starts from. */
static void start(const vec *v, noise_hs *i, noise_hs *r) {
        CHECK_OK(noise_hs_init(i, true, v->prologue, v->prologue_len, v->init_static, v->init_rs));
        CHECK_OK(noise_hs_set_ephemeral(i, v->init_e));
        CHECK_OK(noise_hs_init(r, false, v->prologue, v->prologue_len, v->resp_static, NULL));
        CHECK_OK(noise_hs_set_ephemeral(r, v->resp_e));
}

TEST(published_vectors) {
        CHECK(sodium_init() >= 0);
        static vec v[MAXV];
        int nv = load(v);
        CHECK_EQ(nv, 2);
        for (int k = 0; k < nv; k++) {
                noise_hs i, r;
                start(&v[k], &i, &r);
                uint8_t out[1024], pt[1024];
                /* message 1 */
                int n = noise_write_msg1(&i, v[k].pt[0], v[k].ptlen[0], out, sizeof(out));
                CHECK_EQ(n, (int)v[k].ctlen[0]);
                CHECK_MEM(out, v[k].ct[0], (size_t)n);
                CHECK_EQ(noise_read_msg1(&r, out, (size_t)n, pt, sizeof(pt)), (int)v[k].ptlen[0]);
                CHECK_MEM(pt, v[k].pt[0], v[k].ptlen[0]);
                uint8_t ipub[32];
                noise_public_key(v[k].init_static, ipub);
                CHECK_MEM(r.rs, ipub, 32); /* the responder learnt who spoke */
                /* message 2 */
                n = noise_write_msg2(&r, v[k].pt[1], v[k].ptlen[1], out, sizeof(out));
                CHECK_EQ(n, (int)v[k].ctlen[1]);
                CHECK_MEM(out, v[k].ct[1], (size_t)n);
                CHECK_EQ(noise_read_msg2(&i, out, (size_t)n, pt, sizeof(pt)), (int)v[k].ptlen[1]);
                CHECK_MEM(pt, v[k].pt[1], v[k].ptlen[1]);
                if (v[k].has_hash) {
                        CHECK_MEM(i.h, v[k].hash, 32);
                        CHECK_MEM(r.h, v[k].hash, 32);
                }
                /* transport: initiator and responder alternate, a nonce per direction */
                uint8_t ki2r[32], kr2i[32], k2[32], k3[32];
                noise_split(&i, ki2r, kr2i);
                noise_split(&r, k2, k3);
                CHECK_MEM(ki2r, k2, 32);
                CHECK_MEM(kr2i, k3, 32);
                uint64_t n_i2r = 0, n_r2i = 0;
                for (int m = 2; m < v[k].nmsg; m++) {
                        bool from_init = m % 2 == 0;
                        const uint8_t *key = from_init ? ki2r : kr2i;
                        uint64_t nonce = from_init ? n_i2r++ : n_r2i++;
                        noise_encrypt(key, nonce, NULL, 0, v[k].pt[m], v[k].ptlen[m], out);
                        CHECK_EQ(v[k].ptlen[m] + 16, v[k].ctlen[m]);
                        CHECK_MEM(out, v[k].ct[m], v[k].ctlen[m]);
                        CHECK_EQ(noise_decrypt(key, nonce, NULL, 0, out, v[k].ctlen[m], pt),
                                 (int)v[k].ptlen[m]);
                        CHECK_MEM(pt, v[k].pt[m], v[k].ptlen[m]);
                }
                CHECK(v[k].nmsg >= 4);
        }
}

/* Every bit of both messages matters; so does the responder's key. */
TEST(tampering_fails) {
        CHECK(sodium_init() >= 0);
        static vec v[MAXV];
        load(v);
        uint8_t m1[256], m2[256], pt[256];
        noise_hs i, r;
        start(&v[0], &i, &r);
        int n1 = noise_write_msg1(&i, "hello", 5, m1, sizeof(m1));
        CHECK_EQ(n1, (int)NOISE_MSG1_LEN(5));
        for (int bit = 0; bit < n1 * 8; bit += 7) {
                noise_hs r2;
                CHECK_OK(noise_hs_init(&r2, false, v[0].prologue, v[0].prologue_len, v[0].resp_static, NULL));
                m1[bit / 8] ^= (uint8_t)(1 << (bit % 8));
                CHECK(noise_read_msg1(&r2, m1, (size_t)n1, pt, sizeof(pt)) < 0);
                m1[bit / 8] ^= (uint8_t)(1 << (bit % 8));
        }
        CHECK_EQ(noise_read_msg1(&r, m1, (size_t)n1 - 1, pt, sizeof(pt)), -EBADMSG);
        start(&v[0], &i, &r);
        CHECK_EQ(noise_write_msg1(&i, "hello", 5, m1, sizeof(m1)), n1);
        CHECK_EQ(noise_read_msg1(&r, m1, (size_t)n1, pt, sizeof(pt)), 5);
        int n2 = noise_write_msg2(&r, NULL, 0, m2, sizeof(m2));
        CHECK_EQ(n2, (int)NOISE_MSG2_LEN(0));
        m2[40] ^= 1;
        noise_hs i2 = i;
        CHECK_EQ(noise_read_msg2(&i2, m2, (size_t)n2, pt, sizeof(pt)), -EBADMSG);
        m2[40] ^= 1;
        CHECK_EQ(noise_read_msg2(&i, m2, (size_t)n2, pt, sizeof(pt)), 0);
        /* an initiator that expects another responder key: nothing decrypts */
        uint8_t other_priv[32], other_pub[32];
        noise_keypair(other_priv, other_pub);
        CHECK_OK(noise_hs_init(&i, true, NULL, 0, v[0].init_static, other_pub));
        n1 = noise_write_msg1(&i, NULL, 0, m1, sizeof(m1));
        CHECK_OK(noise_hs_init(&r, false, NULL, 0, v[0].resp_static, NULL));
        CHECK_EQ(noise_read_msg1(&r, m1, (size_t)n1, pt, sizeof(pt)), -EBADMSG);
        /* a low-order ephemeral point (all zeros): the DH is refused */
        CHECK_OK(noise_hs_init(&r, false, NULL, 0, v[0].resp_static, NULL));
        memset(m1, 0, 32);
        CHECK_EQ(noise_read_msg1(&r, m1, (size_t)n1, pt, sizeof(pt)), -EBADMSG);
        noise_hs_wipe(&r);
        static const uint8_t zero[sizeof(r)];
        CHECK_MEM(&r, zero, sizeof(r));
}

/* Random keys both ways, a payload each way, then transport both ways. */
TEST(random_handshakes_agree) {
        CHECK(sodium_init() >= 0);
        for (int k = 0; k < 50; k++) {
                uint8_t ipriv[32], ipub[32], rpriv[32], rpub[32];
                noise_keypair(ipriv, ipub);
                noise_keypair(rpriv, rpub);
                noise_hs i, r;
                CHECK_OK(noise_hs_init(&i, true, "ipcf", 4, ipriv, rpub));
                CHECK_OK(noise_hs_init(&r, false, "ipcf", 4, rpriv, NULL));
                uint8_t m[256], pt[256];
                int n = noise_write_msg1(&i, "abc", 3, m, sizeof(m));
                CHECK_EQ(noise_read_msg1(&r, m, (size_t)n, pt, sizeof(pt)), 3);
                CHECK_MEM(r.rs, ipub, 32);
                n = noise_write_msg2(&r, "defg", 4, m, sizeof(m));
                CHECK_EQ(noise_read_msg2(&i, m, (size_t)n, pt, sizeof(pt)), 4);
                CHECK_MEM(i.h, r.h, 32);
                uint8_t a[32], b[32], c[32], d[32];
                noise_split(&i, a, b);
                noise_split(&r, c, d);
                CHECK_MEM(a, c, 32);
                CHECK_MEM(b, d, 32);
                CHECK(memcmp(a, b, 32) != 0);
        }
}

/* The datagrams' keys (noise_aead_key): each cipher, its key set once
 * (AES-256-GCM expanded at set), seals exactly what libsodium's one-shot
 * call seals with the raw key and opens what it sealed — so a host that
 * expands its keys and one that does not interoperate — in place too; and a
 * flipped bit in the header (associated data), the frames or the tag, the
 * wrong packet number, the wrong key or a short datagram are refused. */
static void aead_key_case(bool aes) {
        uint8_t k[32], k2[32], ad[16], pt[1400], ct[1400 + NOISE_TAG_LEN], ref[sizeof(ct)], out[sizeof(ct)];
        randombytes_buf(k, sizeof(k));
        randombytes_buf(k2, sizeof(k2));
        randombytes_buf(ad, sizeof(ad));
        randombytes_buf(pt, sizeof(pt));
        noise_aead_key key, other;
        noise_aead_key_set(&key, aes, k);
        noise_aead_key_set(&other, aes, k2);
        for (uint64_t pn = 0; pn < 300; pn += 37) {
                size_t len = (size_t)(pn * 7 % sizeof(pt)) + 1;
                uint8_t nonce[12] = { 0 };
                for (int i = 0; i < 8; i++)
                        nonce[4 + i] = (uint8_t)(pn >> (8 * i));
                (aes ? crypto_aead_aes256gcm_encrypt : crypto_aead_chacha20poly1305_ietf_encrypt)(
                        ref, NULL, pt, len, ad, sizeof(ad), NULL, nonce, k);
                noise_aead_encrypt(&key, pn, ad, sizeof(ad), pt, len, ct);
                CHECK_MEM(ct, ref, len + NOISE_TAG_LEN);
                CHECK_EQ(noise_aead_decrypt(&key, pn, ad, sizeof(ad), ref, len + NOISE_TAG_LEN, out), (int)len);
                CHECK_MEM(out, pt, len);
                /* in place, as session.c seals */
                memcpy(out, pt, len);
                noise_aead_encrypt(&key, pn, ad, sizeof(ad), out, len, out);
                CHECK_MEM(out, ref, len + NOISE_TAG_LEN);
                CHECK_EQ(noise_aead_decrypt(&key, pn, ad, sizeof(ad), out, len + NOISE_TAG_LEN, out), (int)len);
                CHECK_MEM(out, pt, len);
                /* what must fail */
                CHECK_ERR(noise_aead_decrypt(&key, pn + 1, ad, sizeof(ad), ref, len + NOISE_TAG_LEN, out), -EBADMSG);
                CHECK_ERR(noise_aead_decrypt(&other, pn, ad, sizeof(ad), ref, len + NOISE_TAG_LEN, out), -EBADMSG);
                CHECK_ERR(noise_aead_decrypt(&key, pn, ad, sizeof(ad), ref, NOISE_TAG_LEN - 1, out), -EBADMSG);
                size_t bit = (size_t)pn * 8 % ((len + NOISE_TAG_LEN) * 8);
                ref[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                CHECK_ERR(noise_aead_decrypt(&key, pn, ad, sizeof(ad), ref, len + NOISE_TAG_LEN, out), -EBADMSG);
                ref[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                ref[len + NOISE_TAG_LEN - 1] ^= 0x80; /* the tag */
                CHECK_ERR(noise_aead_decrypt(&key, pn, ad, sizeof(ad), ref, len + NOISE_TAG_LEN, out), -EBADMSG);
                ref[len + NOISE_TAG_LEN - 1] ^= 0x80;
                ad[pn % sizeof(ad)] ^= 1;
                CHECK_ERR(noise_aead_decrypt(&key, pn, ad, sizeof(ad), ref, len + NOISE_TAG_LEN, out), -EBADMSG);
                ad[pn % sizeof(ad)] ^= 1;
        }
        sodium_memzero(&key, sizeof(key));
        sodium_memzero(&other, sizeof(other));
}

TEST(datagram_keys_seal_as_libsodium_and_refuse_tampering) {
        CHECK(sodium_init() >= 0);
        aead_key_case(false);
        if (crypto_aead_aes256gcm_is_available())
                aead_key_case(true);
        else
                fprintf(stderr, "AES-256-GCM not available on this CPU: ChaCha20-Poly1305 only\n");
}
