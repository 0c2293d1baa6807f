/*
 * calc-client.c — calls calc-server through the stubs ipcf-idl generated
 * from calc.x: `calc-client NAME A B` prints A+B, A*B, A/B, and the running
 * total after adding A. Each stub looks like a local call and returns 0 or a
 * negative errno (-IPCF_EUNKNOWN when the outcome cannot be known).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calc.h"

int main(int argc, char **argv) {
        if (argc != 4) {
                fprintf(stderr, "usage: calc-client NAME A B\n");
                return 2;
        }
        operands op = { strtoll(argv[2], NULL, 0), strtoll(argv[3], NULL, 0) };
        ipcf_rpc_client *c;
        int64_t sum, product, total;
        quotient q;
        int r = ipcf_rpc_client_new(argv[1], NULL, &c);
        if (r == 0)
                r = calc_add(c, &op, &sum, NULL);
        if (r == 0)
                r = calc_mul(c, &op, &product, NULL);
        if (r == 0)
                r = calc_div(c, &op, &q, NULL);
        if (r == 0)
                r = calc_accumulate(c, &op.a, &total, NULL);
        if (r < 0) {
                fprintf(stderr, "calc-client: %s\n", ipcf_strerror(r));
                ipcf_rpc_client_free(c);
                return 1;
        }
        printf("sum %" PRId64 "\nproduct %" PRId64 "\n", sum, product);
        if (q.err)
                printf("quotient: %s\n", strerror(q.err));
        else
                printf("quotient %" PRId64 "\n", q.quotient_u.value);
        printf("total %" PRId64 "\n", total);
        quotient_free(&q);
        ipcf_rpc_client_free(c);
        return 0;
}
