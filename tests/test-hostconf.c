/*
 * test-hostconf.c — the hosts part of the configuration (common/confhosts.c
 * through conf_parse): [hosts], [host NAME], [impair], the [name] keys
 * hosts, remote_allocate and remote_register, [daemon] state_dir; every
 * error names its line (a key enrolled twice, this host's own key enrolled
 * for another); bounds.
 */
#include <arpa/inet.h>
#include <string.h>

#include "common/conf.h"
#include "support/test.h"

static int parse(const char *text, conf *c, char *err) { return conf_parse(text, strlen(text), c, err, 256); }

#define KEY_B "ZmFrZWtleWZha2VrZXlmYWtla2V5ZmFrZWtleWZha2U="
#define KEY_C "YW5vdGhlcmtleWFub3RoZXJrZXlhbm90aGVya2V5YW4="
#define KEY_D "dGhpcmRrZXl0aGlyZGtleXRoaXJka2V5dGhpcmRrZXk="

TEST_TIMEOUT(hostconf_full_example, 10) {
        const char *text = "[daemon]\n"
                           "state_dir = /var/lib/ipcf\n"
                           "[hosts]\n"
                           "name = alpha\n"
                           "listen = 0.0.0.0:7700\n"
                           "dead_interval_ms = 3000\n"
                           "poll_us = 50\n"
                           "search = gamma beta          # before their sections: resolved at the end\n"
                           "[name printer*]\n"
                           "hosts = beta\n"
                           "remote_allocate = *@beta user:alice@gamma uid:1000@* gid:7@beta *\n"
                           "remote_register = user:printd uid:5\n"
                           "[host beta]\n"
                           "address = 10.0.0.2:7701\n"
                           "key = " KEY_B "\n"
                           "[host gamma]\n"
                           "address = [fe80::1]:9\n"
                           "key = " KEY_C "\n"
                           "[host delta]\n"
                           "key = " KEY_D "\n"
                           "[impair]\n"
                           "loss = 10%\n"
                           "duplicate = 1%\n"
                           "corrupt = 0.5%\n"
                           "reorder = 0.25\n"
                           "delay_ms = 2\n"
                           "seed = 42\n"
                           "linger_ms = 0\n";
        conf c;
        char err[256];
        CHECK_OK(parse(text, &c, err));
        CHECK(strcmp(c.state_dir, "/var/lib/ipcf") == 0);
        CHECK(strcmp(c.hosts_sec.self, "alpha") == 0);
        CHECK_EQ(c.hosts_sec.listen.family, 4);
        CHECK_EQ(c.hosts_sec.listen.port, 7700);
        CHECK_EQ(c.hosts_sec.dead_interval_ms, 3000);
        CHECK_EQ(c.hosts_sec.poll_us, 50);
        CHECK_EQ(c.n_hosts, 3);
        CHECK(c.hosts_sec.search.set);
        CHECK_EQ(c.hosts_sec.search.n, 2);
        CHECK_EQ(c.hosts_sec.search.idx[0], 1);
        CHECK_EQ(c.hosts_sec.search.idx[1], 0);
        const conf_host *b = conf_host_find(&c, "beta");
        CHECK(b && b->addr.family == 4 && b->addr.port == 7701);
        uint8_t ip[4];
        inet_pton(AF_INET, "10.0.0.2", ip);
        CHECK_MEM(b->addr.ip, ip, 4);
        CHECK(strcmp(b->key, KEY_B) == 0);
        const conf_host *g = conf_host_find(&c, "gamma");
        CHECK(g && g->addr.family == 6 && g->addr.port == 9 && g->addr.ip[0] == 0xfe);
        CHECK(conf_host_find(&c, "delta")->addr.family == 0);
        CHECK(conf_host_find(&c, "epsilon") == NULL);
        const conf_rule *r = &c.rules[0];
        CHECK(r->hosts.set && r->hosts.n == 1 && r->hosts.idx[0] == 0);
        CHECK_EQ(r->remote_allocate.n, 5);
        CHECK_EQ(r->remote_allocate.who[0].kind, CONF_WHO_ANY);
        CHECK(strcmp(r->remote_allocate.who[0].host, "beta") == 0);
        CHECK_EQ(r->remote_allocate.who[1].kind, CONF_WHO_USER);
        CHECK(strcmp(r->remote_allocate.who[1].name, "alice") == 0);
        CHECK(strcmp(r->remote_allocate.who[1].host, "gamma") == 0);
        CHECK_EQ(r->remote_allocate.who[2].kind, CONF_WHO_UID);
        CHECK_EQ(r->remote_allocate.who[2].id, 1000);
        CHECK(strcmp(r->remote_allocate.who[2].host, "*") == 0);
        CHECK_EQ(r->remote_allocate.who[3].kind, CONF_WHO_GID);
        CHECK(strcmp(r->remote_allocate.who[4].host, "*") == 0);
        CHECK_EQ(r->remote_reg.n, 2);
        CHECK(c.impair.set);
        CHECK_EQ(c.impair.loss_ppm, 100000);
        CHECK_EQ(c.impair.dup_ppm, 10000);
        CHECK_EQ(c.impair.corrupt_ppm, 5000);
        CHECK_EQ(c.impair.reorder_ppm, 250000);
        CHECK_EQ(c.impair.delay_ms, 2);
        CHECK_EQ(c.impair.seed, 42);
        CHECK(c.impair.linger_set);
        CHECK_EQ(c.impair.linger_ms, 0);
        conf_deinit(&c);
}

TEST_TIMEOUT(hostconf_defaults, 10) {
        conf c;
        char err[256];
        CHECK_OK(parse("[name x]\nallocate = *\n", &c, err));
        CHECK(c.state_dir == NULL);
        CHECK_EQ(c.n_hosts, 0);
        CHECK_EQ(c.hosts_sec.line, 0);
        CHECK(!c.hosts_sec.search.set);
        CHECK(!c.impair.set);
        CHECK(!c.impair.linger_set);
        CHECK(!c.rules[0].hosts.set);
        CHECK(!c.rules[0].remote_allocate.set);
        conf_deinit(&c);
        /* an empty search list is a list: nobody is asked */
        CHECK_OK(parse("[hosts]\nsearch =\n", &c, err));
        CHECK(c.hosts_sec.search.set);
        CHECK_EQ(c.hosts_sec.search.n, 0);
        conf_deinit(&c);
}

TEST_TIMEOUT(hostconf_errors_name_their_line, 10) {
        static const struct {
                const char *text;
                unsigned line;
                const char *why;
        } bad[] = {
                { "[hosts]\nname = -bad\n", 2, "name" },
                { "[hosts]\nlisten = 10.0.0.1\n", 2, "listen" },
                { "[hosts]\nlisten = 10.0.0.300:1\n", 2, "listen" },
                { "[hosts]\nlisten = 10.0.0.1:0\n", 2, "listen" },
                { "[hosts]\nlisten = 10.0.0.1:65536\n", 2, "listen" },
                { "[hosts]\nlisten = [::1:7\n", 2, "listen" },
                { "[hosts]\ndead_interval_ms = 10\n", 2, "dead_interval" },
                { "[hosts]\ndead_interval_ms = 99999999999999999999\n", 2, "dead_interval" },
                { "[hosts]\nsearch = beta\n", 2, "no [host]" },
                { "[hosts]\npoll_us = 10001\n", 2, "poll_us" },
                { "[hosts]\npoll_us = 1\npoll_us = 2\n", 3, "duplicate" },
                { "[hosts]\nsearch = a b c d e f g h i j k l m n o p q\n", 2, "too many" },
                { "[hosts]\nname = a\nname = b\n", 3, "duplicate" },
                { "[hosts]\n[hosts]\n", 2, "duplicate [hosts]" },
                { "[hosts]\nport = 3\n", 2, "unknown key" },
                { "[host]\n", 1, "unknown section" },
                { "[host a b]\n", 1, "bad host name" },
                { "[host beta]\naddress = 1.2.3.4:5\n", 1, "needs key" },
                { "[host beta]\nkey = short\n", 2, "key" },
                { "[host beta]\nkey = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", 2, "all-zero key" },
                { "[host beta]\nkey = " KEY_B "\n[host beta]\n", 3, "duplicate [host]" },
                { "[host beta]\nkey = " KEY_B "\n[host gamma]\nkey = " KEY_B "\n", 3,
                  "the same key is enrolled for another host" },
                /* padding bits set: not a text the daemon's decoder takes */
                { "[host beta]\nkey = YW5vdGhlcmtleWFub3RoZXJrZXlhbm90aGVya2V5YW7=\n", 2, "key" },
                { "[host beta]\nkey = " KEY_B "\nkey = " KEY_B "\n", 3, "duplicate" },
                { "[host beta]\nkey = " KEY_B "\nuser = x\n", 3, "unknown key" },
                { "[name x]\nremote_allocate = user:alice\n", 2, "remote principal" },
                { "[name x]\nremote_allocate = group:lp@beta\n", 2, "remote principal" },
                { "[name x]\nremote_allocate = user:alice@-x\n", 2, "remote principal" },
                { "[name x]\nremote_register = *@beta\n", 2, "principal" },
                { "[name x]\nhosts = beta\n", 2, "no [host]" },
                { "[host beta]\nkey = " KEY_B "\n[name x]\nhosts = beta beta\n", 4, "twice" },
                { "[impair]\nloss = 101%\n", 2, "probability" },
                { "[impair]\nloss = 2\n", 2, "probability" },
                { "[impair]\ncorrupt = x\n", 2, "probability" },
                { "[impair]\ndelay_ms = 10001\n", 2, "delay_ms" },
                { "[impair]\nlinger_ms = 60001\n", 2, "linger_ms" },
                { "[impair]\nlinger_ms = -1\n", 2, "linger_ms" },
                { "[impair]\nfoo = 1\n", 2, "unknown key" },
                { "[daemon]\nstate_dir = relative\n", 2, "state_dir" },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                conf c;
                char err[256], want[32];
                int r = parse(bad[i].text, &c, err);
                if (r != -EINVAL || strncmp(err, want, (size_t)snprintf(want, sizeof(want), "line %u:", bad[i].line)) != 0 ||
                    !strstr(err, bad[i].why))
                        test_fail(__FILE__, __LINE__, "case %zu: r %d err '%s'", i, r, err);
                CHECK_EQ(c.n_hosts, 0);
                conf_deinit(&c);
        }
}

/* This host's own key (its text, as the daemon formats it) enrolled for
 * another host: refused at that [host]'s line; any other key passes. */
TEST_TIMEOUT(hostconf_own_key_enrolled_for_another_host, 10) {
        conf c;
        char err[256];
        CHECK_OK(parse("[hosts]\nname = alpha\n[host beta]\nkey = " KEY_B "\n[host gamma]\naddress = 10.0.0.3:7700\n"
                       "key = " KEY_C "\n",
                       &c, err));
        const char *why = NULL;
        unsigned line = 0;
        CHECK_ERR(conf_hosts_check_self(&c, KEY_C, &why, &line), -EINVAL);
        CHECK_EQ(line, 5);
        CHECK(strcmp(why, "[host] key: this host's own key is enrolled for another host") == 0);
        CHECK_ERR(conf_hosts_check_self(&c, KEY_B, &why, &line), -EINVAL);
        CHECK_EQ(line, 3);
        CHECK_OK(conf_hosts_check_self(&c, KEY_D, &why, &line));
        conf_deinit(&c);
        /* no [host]: nothing to compare */
        CHECK_OK(parse("[hosts]\nname = alpha\n", &c, err));
        CHECK_OK(conf_hosts_check_self(&c, KEY_B, &why, &line));
        conf_deinit(&c);
}

TEST_TIMEOUT(hostconf_bounds, 30) {
        /* 256 hosts fit, the 257th does not */
        size_t cap = 300 * 80;
        char *text = malloc(cap);
        size_t n = 0;
        for (int i = 0; i < 257; i++)
                n += (size_t)snprintf(text + n, cap - n, "[host h%d]\nkey = %042dA=\n", i, i);
        conf c;
        char err[256];
        CHECK_ERR(conf_parse(text, n, &c, err, sizeof(err)), -EINVAL);
        CHECK(strstr(err, "too many [host]"));
        conf_deinit(&c);
        n = 0;
        for (int i = 0; i < 256; i++)
                n += (size_t)snprintf(text + n, cap - n, "[host h%d]\nkey = %042dA=\n", i, i);
        CHECK_OK(conf_parse(text, n, &c, err, sizeof(err)));
        CHECK_EQ(c.n_hosts, 256);
        CHECK(strcmp(c.hosts[255].name, "h255") == 0);
        conf_deinit(&c);
        free(text);
        /* addresses at their edges */
        conf_addr a;
        CHECK(conf_addr_parse("255.255.255.255:65535", 21, &a) && a.port == 65535);
        CHECK(conf_addr_parse("[::]:1", 6, &a) && a.family == 6 && a.port == 1);
        CHECK(!conf_addr_parse("[::]", 4, &a));
        CHECK(!conf_addr_parse(":80", 3, &a));
        CHECK(!conf_addr_parse("host.example:80", 15, &a)); /* numeric only */
        CHECK(conf_host_name_valid("a", 1));
        CHECK(!conf_host_name_valid("_a", 2));
        CHECK(!conf_host_name_valid("a@b", 3));
        char long_name[CONF_HOST_NAME_MAX + 2];
        memset(long_name, 'x', sizeof(long_name));
        CHECK(conf_host_name_valid(long_name, CONF_HOST_NAME_MAX));
        CHECK(!conf_host_name_valid(long_name, CONF_HOST_NAME_MAX + 1));
}
