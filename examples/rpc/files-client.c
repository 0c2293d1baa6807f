/*
 * files-client.c — `files-client NAME put LOCAL REMOTE`, `get REMOTE LOCAL`,
 * `append LOCAL REMOTE`, `stat REMOTE`: one call each through the stubs of
 * files.x, whatever the file's size (up to 64 MiB).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"

static int slurp(const char *local, data *d) {
        FILE *f = fopen(local, "rb");
        if (!f)
                return -errno;
        size_t cap = 1 << 16;
        d->data_val = malloc(cap);
        d->data_len = 0;
        size_t n;
        while (d->data_val && (n = fread(d->data_val + d->data_len, 1, cap - d->data_len, f)) > 0) {
                d->data_len += (uint32_t)n;
                if (d->data_len == cap)
                        d->data_val = realloc(d->data_val, cap *= 2);
        }
        fclose(f);
        return d->data_val ? 0 : -ENOMEM;
}

int main(int argc, char **argv) {
        if (argc < 4) {
                fprintf(stderr, "usage: files-client NAME put|append LOCAL REMOTE | get REMOTE LOCAL | stat REMOTE\n");
                return 2;
        }
        ipcf_rpc_client *c;
        int r = ipcf_rpc_client_new(argv[1], NULL, &c), err = 0;
        const char *op = argv[2];
        if (r == 0 && (!strcmp(op, "put") || !strcmp(op, "append")) && argc == 5) {
                data d;
                r = slurp(argv[3], &d);
                int32_t res = 0;
                if (r == 0 && op[0] == 'p') {
                        put_args a = { argv[4], d };
                        r = files_put(c, &a, &res, NULL);
                } else if (r == 0) {
                        append_args a = { argv[4], d };
                        r = files_append(c, &a, &res, NULL);
                }
                err = res;
                free(d.data_val);
        } else if (r == 0 && !strcmp(op, "get") && argc == 5) {
                get_res g;
                path p = argv[3];
                r = files_get(c, &p, &g, NULL);
                if (r == 0 && !(err = g.err)) {
                        FILE *f = fopen(argv[4], "wb");
                        if (!f || fwrite(g.get_res_u.bytes.data_val, 1, g.get_res_u.bytes.data_len, f) !=
                                          g.get_res_u.bytes.data_len)
                                err = EIO;
                        if (f)
                                fclose(f);
                }
                if (r == 0)
                        get_res_free(&g);
        } else if (r == 0 && !strcmp(op, "stat")) {
                stat_res st;
                path p = argv[3];
                r = files_stat(c, &p, &st, NULL);
                if (r == 0 && !(err = st.err))
                        printf("%" PRIu64 "\n", st.size);
        } else if (r == 0) {
                r = -EINVAL;
        }
        ipcf_rpc_client_free(c);
        if (r < 0 || err) {
                fprintf(stderr, "files-client: %s\n", r < 0 ? ipcf_strerror(r) : strerror(err));
                return 1;
        }
        return 0;
}
