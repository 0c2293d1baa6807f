/*
 * cmd_dgram.c — `ipcf dgram send|recv`: datagrams from the shell.
 *
 *   ipcf dgram send NAME [TEXT]          send TEXT (or stdin) as one datagram;
 *                                        -t MS waits that long for room (else
 *                                        a full queue drops it: exit 1).
 *   ipcf dgram recv NAME [-n N] [--echo] receive on NAME, print each datagram
 *                                        as "pid uid: text" lines; --echo
 *                                        answers each with itself.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static int dgram_send(int argc, char **argv) {
        uint64_t timeout = 0;
        int c;
        optind = 1;
        while ((c = getopt(argc, argv, "t:")) != -1)
                if (c != 't' || cli_parse_uint(optarg, 0x7fffffff, &timeout) < 0)
                        return cli_usage("dgram", "send: bad option");
        if (optind >= argc || optind + 2 < argc)
                return cli_usage("dgram", "send NAME [TEXT]");
        const char *name = argv[optind];
        static char buf[256 * 1024];
        size_t len = 0;
        if (optind + 1 < argc) {
                len = strlen(argv[optind + 1]);
                if (len > sizeof(buf))
                        return cli_error("datagram", -EMSGSIZE);
                memcpy(buf, argv[optind + 1], len);
        } else {
                ssize_t r;
                while ((r = read(0, buf + len, sizeof(buf) - len)) > 0)
                        len += (size_t)r;
        }
        int ep = ipcf_dgram_open(NULL, NULL);
        if (ep < 0)
                return cli_error("opening an endpoint", ep);
        ssize_t r = ipcf_dgram_send(ep, name, buf, len, (int)timeout);
        ipcf_dealloc(ep, NULL);
        return r < 0 ? cli_error(name, (int)r) : CLI_EXIT_OK;
}

static int dgram_recv(int argc, char **argv) {
        static const struct option longopts[] = { { "echo", no_argument, NULL, 'e' }, { 0 } };
        uint64_t count = 0;
        bool echo = false;
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "n:", longopts, NULL)) != -1) {
                if (c == 'e')
                        echo = true;
                else if (c != 'n' || cli_parse_uint(optarg, UINT32_MAX, &count) < 0)
                        return cli_usage("dgram", "recv: bad option");
        }
        if (optind != argc - 1)
                return cli_usage("dgram", "recv NAME [-n N] [--echo]");
        int ep = ipcf_dgram_open(argv[optind], NULL);
        if (ep < 0)
                return cli_error(argv[optind], ep);
        static char buf[256 * 1024];
        for (uint64_t n = 0; !count || n < count; n++) {
                ipcf_dgram_src src;
                ssize_t r = ipcf_dgram_recv(ep, buf, sizeof(buf), -1, &src);
                if (r < 0)
                        return cli_error("receiving", (int)r);
                printf("%d %u: %.*s\n", (int)src.from.pid, (unsigned)src.from.uid, (int)r, buf);
                fflush(stdout);
                if (echo)
                        ipcf_dgram_answer(ep, &src, buf, (size_t)r, 1000);
        }
        ipcf_dealloc(ep, NULL);
        return CLI_EXIT_OK;
}

int cmd_dgram(int argc, char **argv) {
        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                puts("usage: ipcf dgram send NAME [TEXT] [-t MS]\n"
                     "       ipcf dgram recv NAME [-n N] [--echo]\n"
                     "Send single datagrams to a name, or receive those sent to it.");
                return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        }
        if (strcmp(argv[1], "send") == 0)
                return dgram_send(argc - 1, argv + 1);
        if (strcmp(argv[1], "recv") == 0)
                return dgram_recv(argc - 1, argv + 1);
        return cli_usage("dgram", "unknown action '%s'", argv[1]);
}
