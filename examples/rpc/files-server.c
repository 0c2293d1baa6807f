/*
 * files-server.c — serves the files of a directory: `files-server NAME DIR`.
 * A name with '/' or starting with '.' is refused (EPERM): a caller reaches
 * only the files directly in DIR. Each PUT and APPEND prints on stdout what
 * it wrote and for whom, as the facility stamped the caller (ctx->host:
 * another host's name for a call from there).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"

static int dirfd_served;

static int check(const char *name) {
        return !name[0] || name[0] == '.' || strchr(name, '/') ? EPERM : 0;
}

static int write_all(int fd, const char *p, size_t n) {
        while (n) {
                ssize_t w = write(fd, p, n);
                if (w < 0)
                        return errno;
                p += w;
                n -= (size_t)w;
        }
        return 0;
}

static void log_write(const ipcf_rpc_ctx *ctx, const char *what, const char *name, uint32_t len) {
        printf("%s %s (%u bytes) by %s (pid %d, uid %u) on %s\n", what, name, (unsigned)len, ctx->caller.name,
               (int)ctx->caller.pid, (unsigned)ctx->caller.uid, ctx->host);
}

static int put(ipcf_rpc_ctx *ctx, const put_args *in, int32_t *out, void *user) {
        if ((*out = check(in->name)))
                return 0;
        int fd = openat(dirfd_served, in->name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        *out = fd < 0 ? errno : write_all(fd, in->bytes.data_val, in->bytes.data_len);
        if (fd >= 0)
                close(fd);
        if (!*out)
                log_write(ctx, "PUT", in->name, in->bytes.data_len);
        return 0;
}

static int append(ipcf_rpc_ctx *ctx, const append_args *in, int32_t *out, void *user) {
        if ((*out = check(in->arg1)))
                return 0;
        int fd = openat(dirfd_served, in->arg1, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        *out = fd < 0 ? errno : write_all(fd, in->arg2.data_val, in->arg2.data_len);
        if (fd >= 0)
                close(fd);
        if (!*out)
                log_write(ctx, "APPEND", in->arg1, in->arg2.data_len);
        return 0;
}

static int get(ipcf_rpc_ctx *ctx, const path *in, get_res *out, void *user) {
        if ((out->err = check(*in)))
                return 0;
        int fd = openat(dirfd_served, *in, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || st.st_size > (64 << 20)) {
                out->err = fd < 0 ? errno : EFBIG;
                if (fd >= 0)
                        close(fd);
                return 0;
        }
        data *d = &out->get_res_u.bytes;
        d->data_len = (uint32_t)st.st_size;
        d->data_val = malloc(st.st_size ? (size_t)st.st_size : 1);
        size_t got = 0;
        while (d->data_val && got < d->data_len) {
                ssize_t n = read(fd, d->data_val + got, d->data_len - got);
                if (n <= 0)
                        break;
                got += (size_t)n;
        }
        close(fd);
        if (!d->data_val || got != d->data_len) {
                free(d->data_val);
                d->data_val = NULL;
                d->data_len = 0;
                out->err = EIO;
        }
        return 0;
}

static int stat_file(ipcf_rpc_ctx *ctx, const path *in, stat_res *out, void *user) {
        struct stat st;
        out->err = check(*in);
        if (!out->err && fstatat(dirfd_served, *in, &st, 0) < 0)
                out->err = errno;
        out->size = out->err ? 0 : (uint64_t)st.st_size;
        return 0;
}

int main(int argc, char **argv) {
        if (argc != 3) {
                fprintf(stderr, "usage: files-server NAME DIR\n");
                return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        dirfd_served = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd_served < 0) {
                perror(argv[2]);
                return 1;
        }
        static const files_v1_handlers handlers = { .put = put, .get = get, .stat = stat_file, .append = append };
        ipcf_rpc_server *s;
        int r = ipcf_rpc_server_new(argv[1], NULL, &s);
        if (r == 0)
                r = files_v1_serve(s, &handlers, NULL);
        if (r == 0)
                r = ipcf_rpc_server_run(s, 2, -1);
        if (r < 0)
                fprintf(stderr, "files-server: %s\n", ipcf_strerror(r));
        ipcf_rpc_server_free(s);
        return r < 0;
}
