/*
 * cmd_capture.c — `ipcf capture -w FILE [-d] [-n COUNT] [NAME...]`: the
 * events of the traffic monitor (what passes through the daemon:
 * allocations, their outcomes, flow ends, names) and with -d the EFCP
 * datagrams the daemon sends to and receives from other hosts, written as a
 * pcap file, one packet per event or datagram, for Wireshark and tshark with
 * the dissector of tools/wireshark/ipcf.lua.
 *
 * FORMAT (docs/PROTOCOL.md §10): link type LINKTYPE_USER0 (147); each packet
 * is a capture record: type (1: a monitor event, 2: a datagram), version
 * (1), the length of the body, then the body, big-endian. The packet's time
 * is the daemon's time of the event. The file is whole after every packet (flushed), so it
 * may be read while the capture runs, and ^C (or SIGTERM) ends it cleanly.
 *
 * Who sees what is the monitor's policy (ipcf_monitor_open): datagrams
 * only root and the daemon's user. Only the public API is used.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int cmd_capture(int argc, char **argv);

#define LINKTYPE_USER0 147
#define CAPTURE_MONITOR_EVENT 1
#define CAPTURE_DATAGRAM 2
#define CAPTURE_VERSION 1

static const char capture_usage[] =
        "usage: ipcf capture -w FILE [-d] [-n COUNT] [NAME...]\n\n"
        "Write what the facility does (the events 'ipcf monitor' prints) to FILE as\n"
        "a pcap capture (link type USER0, see docs/PROTOCOL.md), until ^C or COUNT\n"
        "records; NAME... (shell globs) keep the events of matching names. Read it\n"
        "with: tshark -X lua_script:tools/wireshark/ipcf.lua -r FILE\n"
        "  -w, --write=FILE   the file ('-': standard output)\n"
        "  -d, --datagrams    also the daemon's EFCP datagrams to and from other hosts\n"
        "                     (their first 512 bytes; root or the daemon's user only)\n"
        "  -n, --count=COUNT  stop after COUNT records\n";

/* A record under construction: big-endian fields appended to buf (an
 * event: at most 4 + 80 + 256 bytes; a datagram: 4 + 24 + 512). */
typedef struct record {
        uint8_t buf[1024];
        size_t len;
} record;

static void put_u8(record *r, uint8_t v) {
        r->buf[r->len++] = v;
}

static void put_be(record *r, uint64_t v, unsigned bytes) {
        while (bytes-- > 0)
                put_u8(r, (uint8_t)(v >> (8 * bytes)));
}

/* A fixed field of n bytes, NUL-padded. */
static void put_fixed(record *r, const char *s, size_t n) {
        size_t l = strnlen(s, n);
        memcpy(r->buf + r->len, s, l);
        memset(r->buf + r->len + l, 0, n - l);
        r->len += n;
}

/* A string (NUL-terminated, of at most 127 bytes here: names and
 * reasons): its length byte, then the bytes. */
static void put_str(record *r, const char *s) {
        size_t l = strlen(s);
        if (l > 255)
                l = 255;
        put_u8(r, (uint8_t)l);
        memcpy(r->buf + r->len, s, l);
        r->len += l;
}

/* The record of one monitor event (docs/PROTOCOL.md §10). Its size is
 * bounded: 4 + 80 + 1 + 127 + 1 + 127 bytes. */
static void encode_event(record *r, const ipcf_monitor_event *ev) {
        r->len = 0;
        put_u8(r, CAPTURE_MONITOR_EVENT);
        put_u8(r, CAPTURE_VERSION);
        put_be(r, 0, 2); /* the body's length, set below */
        put_be(r, (uint16_t)ev->kind, 2);
        put_be(r, (uint16_t)ev->end_code, 2);
        put_be(r, ev->lost, 4);
        put_be(r, ev->alloc_id, 8);
        put_be(r, ev->flow_id, 8);
        put_be(r, (uint32_t)ev->pid_a, 4);
        put_be(r, (uint32_t)ev->uid_a, 4);
        put_be(r, (uint32_t)ev->pid_b, 4);
        put_be(r, (uint32_t)ev->uid_b, 4);
        put_be(r, (uint32_t)-ev->error, 4);
        put_u8(r, (uint8_t)ev->end_side);
        put_be(r, 0, 3);
        put_fixed(r, ev->prog_a, 16);
        put_fixed(r, ev->prog_b, 16);
        put_str(r, ev->name);
        put_str(r, ev->reason);
        r->buf[2] = (uint8_t)((r->len - 4) >> 8);
        r->buf[3] = (uint8_t)(r->len - 4);
}

/* The record of one datagram (docs/PROTOCOL.md §10): direction, the peer,
 * its length on the wire, then its first bytes. */
static void encode_datagram(record *r, const ipcf_monitor_datagram *dg, const uint8_t *data) {
        size_t n = dg->captured < 512 ? dg->captured : 512;
        r->len = 0;
        put_u8(r, CAPTURE_DATAGRAM);
        put_u8(r, CAPTURE_VERSION);
        put_be(r, 24 + n, 2);
        put_u8(r, (uint8_t)dg->direction);
        put_u8(r, (uint8_t)dg->family);
        put_be(r, dg->port, 2);
        memcpy(r->buf + r->len, dg->addr, 16);
        r->len += 16;
        put_be(r, dg->wire_len, 4);
        memcpy(r->buf + r->len, data, n);
        r->len += n;
}

/* The capture file's error: the system's words (a file's ENOENT or EACCES
 * is not the facility's "no such name" or "access denied by policy"). */
static int file_error(const char *file, int err) {
        return cli_fail("capture %s: %s", file, strerror(-err));
}

/* Where the packets go: the file and its name (for its errors). */
typedef struct capture_sink {
        cli_pcap pcap;
        const char *file;
} capture_sink;

/* The sink of `ipcf capture`: one packet per event or datagram. */
static int write_event(void *ctx, const ipcf_monitor_event *ev, const ipcf_monitor_datagram *dg,
                       const uint8_t *data) {
        record r;
        if (dg)
                encode_datagram(&r, dg, data);
        else
                encode_event(&r, ev);
        capture_sink *sink = ctx;
        int e = cli_pcap_write(&sink->pcap, ev->time_ns, r.buf, r.len);
        return e < 0 ? file_error(sink->file, e) : 0;
}

typedef struct capture_cfg {
        const char *file;
        uint64_t count;
        uint32_t flags;
} capture_cfg;

static int capture_option(void *ctx, int key, const char *value) {
        capture_cfg *c = ctx;
        if (key == 'd') {
                c->flags |= IPCF_MONITOR_DATAGRAMS;
                return 0;
        }
        if (key == 'w') {
                c->file = value;
                return value[0] ? 0 : -EINVAL;
        }
        return cli_parse_uint(value, UINT64_MAX, &c->count);
}

int cmd_capture(int argc, char **argv) {
        static const cli_option options[] = {
                { "write", 'w', true }, { "datagrams", 'd', false }, { "count", 'n', true }, { 0 },
        };
        capture_cfg cfg = { .count = UINT64_MAX };
        const cli_spec spec = { .cmd = "capture", .usage = capture_usage, .options = options,
                                .max_args = -1 };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, capture_option, &cfg, &args);
        if (st != CLI_PARSED)
                return st;
        if (!cfg.file)
                return cli_usage("capture", "-w FILE missing");
        capture_sink sink = { .file = cfg.file };
        int r = cli_pcap_open(&sink.pcap, cfg.file, LINKTYPE_USER0);
        if (r < 0)
                return file_error(cfg.file, r);
        st = cli_monitor_loop(&args, cfg.count, cfg.flags, write_event, &sink);
        r = cli_pcap_close(&sink.pcap);
        return st == CLI_EXIT_OK && r < 0 ? file_error(cfg.file, r) : st;
}
