/*
 * keyfile.c — this host's key on disk, and public keys as text (keyfile.h).
 */
#include "efcp/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "efcp/noise.h"

/* Reads a whole, well-guarded key file at fd. */
static int read_key(int fd, uint8_t priv[32]) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))
                return -EPERM;
        if (st.st_size != 32)
                return -EBADMSG;
        uint8_t extra;
        ssize_t n = pread(fd, priv, 32, 0);
        if (n != 32 || pread(fd, &extra, 1, 32) != 0)
                return n < 0 ? -errno : -EBADMSG;
        return 0;
}

/* Makes a new key file atomically: temp file, write, fsync, link. */
static int create_key(const char *dir, const char *path, uint8_t priv[32]) {
        char tmp[4096];
        if (snprintf(tmp, sizeof(tmp), "%s/.host.key.XXXXXX", dir) >= (int)sizeof(tmp))
                return -ENAMETOOLONG;
        mode_t old = umask(077);
        int fd = mkostemp(tmp, O_CLOEXEC);
        umask(old);
        if (fd < 0)
                return -errno;
        uint8_t pub[32];
        noise_keypair(priv, pub);
        int r = 0;
        if (fchmod(fd, 0600) < 0 || write(fd, priv, 32) != 32 || fsync(fd) < 0)
                r = -errno ? -errno : -EIO;
        close(fd);
        /* link() fails if the name exists: a concurrent first start wins,
         * and we then read its key */
        if (r == 0 && link(tmp, path) < 0)
                r = -errno;
        unlink(tmp);
        sodium_memzero(pub, sizeof(pub));
        if (r == 0) {
                int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd >= 0) {
                        fsync(dfd);
                        close(dfd);
                }
        }
        return r;
}

/* dir/host.key into path; 0 or -ENAMETOOLONG. */
static int key_path(const char *dir, char *path, size_t size) {
        return snprintf(path, size, "%s/%s", dir, EFCP_KEYFILE_NAME) >= (int)size ? -ENAMETOOLONG : 0;
}

/* The key pair of the key file open at fd (closed here); ret_priv may be
 * NULL (only the public key wanted). */
static int key_pair(int fd, uint8_t ret_priv[32], uint8_t ret_pub[32]) {
        if (fd < 0)
                return errno == ELOOP ? -EPERM : -errno;
        uint8_t priv[32];
        int r = read_key(fd, priv);
        close(fd);
        if (r == 0)
                r = noise_public_key(priv, ret_pub);
        if (r == 0 && ret_priv)
                memcpy(ret_priv, priv, 32);
        sodium_memzero(priv, sizeof(priv));
        return r;
}

int efcp_keyfile_load(const char *dir, uint8_t ret_priv[32], uint8_t ret_pub[32], int *ret_created) {
        if (!dir || !ret_priv || !ret_pub || sodium_init() < 0)
                return -EINVAL;
        char path[4096];
        if (key_path(dir, path, sizeof(path)) < 0)
                return -ENAMETOOLONG;
        if (ret_created)
                *ret_created = 0;
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
                uint8_t priv[32];
                int r = create_key(dir, path, priv);
                sodium_memzero(priv, sizeof(priv));
                if (r == 0 && ret_created)
                        *ret_created = 1;
                if (r < 0 && r != -EEXIST)
                        return r;
                fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        }
        return key_pair(fd, ret_priv, ret_pub);
}

int efcp_keyfile_peek(const char *dir, uint8_t ret_pub[32]) {
        if (!dir || !ret_pub || sodium_init() < 0)
                return -EINVAL;
        char path[4096];
        if (key_path(dir, path, sizeof(path)) < 0)
                return -ENAMETOOLONG;
        return key_pair(open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), NULL, ret_pub);
}

int efcp_key_format(const uint8_t pub[32], char *out, size_t cap) {
        if (!pub || !out || cap < EFCP_KEY_TEXT_LEN + 1)
                return -ENOBUFS;
        sodium_bin2base64(out, cap, pub, 32, sodium_base64_VARIANT_ORIGINAL);
        return EFCP_KEY_TEXT_LEN;
}

int efcp_key_parse(const char *text, uint8_t ret_pub[32]) {
        if (!text || !ret_pub)
                return -EINVAL;
        while (*text == ' ' || *text == '\t')
                text++;
        size_t n = strlen(text);
        while (n && (text[n - 1] == ' ' || text[n - 1] == '\t' || text[n - 1] == '\n'))
                n--;
        size_t got;
        const char *end;
        uint8_t pub[32];
        if (n != EFCP_KEY_TEXT_LEN ||
            sodium_base642bin(pub, sizeof(pub), text, n, NULL, &got, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
            got != 32 || end != text + n)
                return -EINVAL;
        memcpy(ret_pub, pub, 32);
        return 0;
}
