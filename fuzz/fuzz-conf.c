/*
 * fuzz-conf.c — libFuzzer target for the configuration parser
 * (src/common/conf.c, confhosts.c, confcheck.c): any text must either parse
 * into a structure within the documented bounds (no limit that locks
 * everyone out, no [name] section an earlier one hides), or fail with a
 * "line N: ..." message of bounded length; never crash, leak, or read
 * outside the input. Seeds: fuzz/corpus/fuzz-conf/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        conf c;
        char err[1024];
        /* Exact-size copy, no terminator: the parser must use len only. */
        char *text = malloc(size ? size : 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        int r = conf_parse(text, size, &c, err, sizeof(err));
        if (r == 0) {
                if (c.n_rules > CONF_RULES_MAX)
                        abort();
                for (size_t i = 0; i < c.n_rules; i++) {
                        const conf_rule *ru = &c.rules[i];
                        if (strlen(ru->pattern) == 0 || strlen(ru->pattern) > IPCF_NAME_MAX)
                                abort();
                        if (ru->allocate.n > CONF_WHO_MAX || ru->reg.n > CONF_WHO_MAX)
                                abort();
                        if (ru->activate && (strlen(ru->activate) == 0 || strlen(ru->activate) > CONF_CMD_MAX))
                                abort();
                        if (ru->activate_timeout_ms == 0 || ru->activate_timeout_ms > CONF_ACTIVATE_TIMEOUT_MAX)
                                abort();
                }
                if (c.n_hosts > CONF_HOSTS_MAX || c.hosts_sec.search.n > CONF_HOSTLIST_MAX)
                        abort();
                for (size_t i = 0; i < c.n_hosts; i++)
                        if (!conf_host_name_valid(c.hosts[i].name, strlen(c.hosts[i].name)) ||
                            strlen(c.hosts[i].key) != CONF_KEY_TEXT_LEN)
                                abort();
                for (size_t i = 0; i < c.hosts_sec.search.n; i++)
                        if (c.hosts_sec.search.idx[i] >= c.n_hosts)
                                abort();
                for (size_t i = 0; i < c.n_rules; i++)
                        for (size_t k = 0; k < c.rules[i].hosts.n; k++)
                                if (c.rules[i].hosts.idx[k] >= c.n_hosts)
                                        abort();
                /* No limit locks everyone out, no [name] repeats an earlier one. */
                if (c.limits.clients_per_user < 1 || c.limits.registrations_per_user < 1 ||
                    c.limits.pending_per_user < 1 || c.limits.flows_per_user < 2 ||
                    c.limits.ring_bytes_per_user < 8192)
                        abort();
                for (size_t i = 0; i < c.n_rules; i++)
                        for (size_t k = 0; k < i; k++)
                                if (!strcmp(c.rules[i].pattern, c.rules[k].pattern) || !strcmp(c.rules[k].pattern, "*"))
                                        abort();
                conf_match(&c, "printer");
                conf_match(&c, "a");
        } else if (strncmp(err, "line ", 5) != 0 || strlen(err) >= sizeof(err) - 1) {
                abort(); /* every error names its line, and fits */
        }
        conf_deinit(&c);
        free(text);
        return 0;
}
