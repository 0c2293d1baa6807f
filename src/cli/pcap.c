/*
 * pcap.c — writing pcap files (the classic libpcap format that tcpdump,
 * Wireshark and tshark read): a 24-byte file header, then per packet a
 * 16-byte record header (seconds, microseconds, captured and original
 * length) and the bytes. Written in this host's byte order, as libpcap does
 * (the magic number tells readers which). Every packet is flushed at once:
 * a capture interrupted at any point is a whole file.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define PCAP_MAGIC_US 0xa1b2c3d4u
#define PCAP_SNAPLEN 65535u

/* Write exactly len bytes and flush; 0 or -errno. */
static int put(cli_pcap *p, const void *data, size_t len) {
        if (fwrite(data, 1, len, p->f) != len || fflush(p->f) != 0)
                return errno ? -errno : -EIO;
        return 0;
}

int cli_pcap_open(cli_pcap *p, const char *path, uint32_t linktype) {
        p->close_f = strcmp(path, "-") != 0;
        p->f = p->close_f ? fopen(path, "wbe") : stdout;
        if (!p->f)
                return -errno;
        struct {
                uint32_t magic;
                uint16_t major, minor;
                int32_t thiszone;
                uint32_t sigfigs, snaplen, linktype;
        } h = { PCAP_MAGIC_US, 2, 4, 0, 0, PCAP_SNAPLEN, linktype };
        int r = put(p, &h, sizeof(h));
        if (r < 0)
                cli_pcap_close(p);
        return r;
}

int cli_pcap_write(cli_pcap *p, uint64_t time_ns, const void *data, size_t len) {
        if (len > PCAP_SNAPLEN)
                return -EMSGSIZE;
        struct {
                uint32_t sec, usec, incl_len, orig_len;
        } rec = { (uint32_t)(time_ns / 1000000000u), (uint32_t)(time_ns % 1000000000u / 1000),
                  (uint32_t)len, (uint32_t)len };
        int r = put(p, &rec, sizeof(rec));
        return r < 0 ? r : put(p, data, len);
}

int cli_pcap_close(cli_pcap *p) {
        int r = 0;
        if (p->f && p->close_f && fclose(p->f) != 0)
                r = -errno;
        p->f = NULL;
        return r;
}
