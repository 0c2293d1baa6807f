/*
 * test-efcp-keyfile.c — the host key on disk and public keys as text
 * (src/efcp/keyfile.c): created once with mode 0600, the same key on every
 * later load, refused when the file's mode, owner, size or type is wrong
 * (and never overwritten then), two first starts at once agree; base64
 * round trip and malformed text refused.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "efcp/keyfile.h"
#include "efcp/noise.h"
#include "support/test.h"

static void scratch(char *dir, size_t cap) {
        snprintf(dir, cap, "/tmp/efcp-keyfile-XXXXXX");
        CHECK(mkdtemp(dir));
}

static void cleanup(const char *dir) {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        CHECK(system(cmd) == 0);
}

TEST(created_once_then_loaded) {
        char dir[64], path[128];
        scratch(dir, sizeof(dir));
        snprintf(path, sizeof(path), "%s/host.key", dir);
        uint8_t priv[32], pub[32], priv2[32], pub2[32], check[32];
        int created = -1;
        CHECK_OK(efcp_keyfile_load(dir, priv, pub, &created));
        CHECK_EQ(created, 1);
        struct stat st;
        CHECK(stat(path, &st) == 0);
        CHECK_EQ(st.st_mode & 0777, 0600);
        CHECK_EQ(st.st_size, 32);
        CHECK_OK(noise_public_key(priv, check));
        CHECK_MEM(check, pub, 32);
        CHECK_OK(efcp_keyfile_load(dir, priv2, pub2, &created));
        CHECK_EQ(created, 0);
        CHECK_MEM(priv2, priv, 32);
        CHECK_MEM(pub2, pub, 32);
        /* no temporary file left behind */
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 1", dir);
        CHECK(system(cmd) == 0);
        cleanup(dir);
}

TEST(wrong_mode_size_type_refused_and_kept) {
        char dir[64], path[128];
        scratch(dir, sizeof(dir));
        snprintf(path, sizeof(path), "%s/host.key", dir);
        uint8_t priv[32], pub[32];
        CHECK_OK(efcp_keyfile_load(dir, priv, pub, NULL));
        CHECK(chmod(path, 0644) == 0);
        CHECK_ERR(efcp_keyfile_load(dir, priv, pub, NULL), -EPERM);
        CHECK(chmod(path, 0640) == 0);
        CHECK_ERR(efcp_keyfile_load(dir, priv, pub, NULL), -EPERM);
        CHECK(chmod(path, 0600) == 0);
        CHECK(truncate(path, 31) == 0);
        CHECK_ERR(efcp_keyfile_load(dir, priv, pub, NULL), -EBADMSG);
        CHECK(truncate(path, 33) == 0);
        CHECK_ERR(efcp_keyfile_load(dir, priv, pub, NULL), -EBADMSG);
        struct stat st;
        CHECK(stat(path, &st) == 0 && st.st_size == 33); /* never overwritten */
        /* a symlink or a directory in its place */
        CHECK(unlink(path) == 0);
        CHECK(symlink("/etc/passwd", path) == 0);
        CHECK_ERR(efcp_keyfile_load(dir, priv, pub, NULL), -EPERM);
        CHECK(unlink(path) == 0);
        CHECK(mkdir(path, 0700) == 0);
        CHECK(efcp_keyfile_load(dir, priv, pub, NULL) < 0);
        cleanup(dir);
        /* a directory that does not exist */
        CHECK_ERR(efcp_keyfile_load("/nonexistent/efcp", priv, pub, NULL), -ENOENT);
}

/* Eight processes start at once on an empty directory: one key for all. */
TEST(concurrent_first_starts_agree) {
        char dir[64];
        scratch(dir, sizeof(dir));
        int pp[2];
        CHECK(pipe(pp) == 0);
        for (int k = 0; k < 8; k++)
                if (fork() == 0) {
                        uint8_t priv[32], pub[32];
                        if (efcp_keyfile_load(dir, priv, pub, NULL) < 0 || write(pp[1], pub, 32) != 32)
                                _exit(1);
                        _exit(0);
                }
        close(pp[1]);
        uint8_t first[32], pub[32];
        for (int k = 0; k < 8; k++) {
                CHECK(read(pp[0], pub, 32) == 32);
                if (k == 0)
                        memcpy(first, pub, 32);
                CHECK_MEM(pub, first, 32);
        }
        int st;
        while (wait(&st) > 0)
                CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        cleanup(dir);
}

TEST(key_text_round_trip) {
        uint8_t priv[32], pub[32], back[32];
        noise_keypair(priv, pub);
        char text[EFCP_KEY_TEXT_LEN + 1];
        CHECK_EQ(efcp_key_format(pub, text, sizeof(text)), EFCP_KEY_TEXT_LEN);
        CHECK_EQ(strlen(text), EFCP_KEY_TEXT_LEN);
        CHECK_OK(efcp_key_parse(text, back));
        CHECK_MEM(back, pub, 32);
        char padded[64];
        snprintf(padded, sizeof(padded), "  %s \n", text);
        CHECK_OK(efcp_key_parse(padded, back));
        CHECK_ERR(efcp_key_format(pub, text, EFCP_KEY_TEXT_LEN), -ENOBUFS);
        CHECK_ERR(efcp_key_parse("", back), -EINVAL);
        CHECK_ERR(efcp_key_parse("AAAA", back), -EINVAL);
        text[10] = '*';
        CHECK_ERR(efcp_key_parse(text, back), -EINVAL);
        /* 33 bytes of base64 are not a key */
        CHECK_ERR(efcp_key_parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", back), -EINVAL);
}
