/*
 * trust.c — which records of the directory lead somewhere (dirmodule.h
 * TRUST), and hosts enrolled from the directory ([directory] trust_keys).
 *
 * A RECORD'S STATUS (CTL_DIR_ST_*, shown by `ipcf ls --all-hosts`):
 *   SELF          this host's own record (local names are the registry's);
 *   USABLE        its host is enrolled here and the fingerprint of the key
 *                 enrolled is the record's;
 *   TRUSTED       the same, for a host enrolled from the directory;
 *   FP_MISMATCH   its host is enrolled here with another key: a pinned key
 *                 always wins over etcd, and a key changed in etcd for an
 *                 enrolled host (pinned, or enrolled from the directory
 *                 earlier in this daemon's life) is refused and counted;
 *   NOT_ENROLLED  its host is not enrolled and trust_keys = no;
 *   BAD_KEY       trust_keys = yes, but the record carries no key, or one
 *                 whose fingerprint is not the record's, or one that cannot
 *                 be enrolled (this host's own, another host's, not a key),
 *                 or an address that is not one, or one this host's UDP
 *                 socket cannot send to (udp_unreachable: IPv6 on IPv4);
 *   TRUSTABLE     trust_keys = yes and the record's key is its
 *                 fingerprint's: the first allocation that meets it enrols
 *                 the host (hosts_enrol) with that key and address.
 *
 * WHO CALLS: search.c (allocations: dir_record_use, which enrols; watches:
 * dir_record_reachable, which does not); list.c (the listing). One thread.
 */
#include <errno.h>
#include <string.h>

#include "common/ctl.h"
#include "daemon/core/log.h"
#include "daemon/directory/dirmodule.h"
#include "daemon/hosts/hosts.h"
#include "efcp/keyfile.h"

static bool trust_keys;
static uint64_t unusable, key_refused, enrolled;

void dir_trust_init(ipcfd *d) {
        trust_keys = d->conf.directory.trust_keys;
        unusable = key_refused = enrolled = 0;
}

void dir_trust_get(dir_trust_stats *ret) {
        *ret = (dir_trust_stats){ .trust_keys = trust_keys, .unusable = unusable, .keys_refused = key_refused,
                                  .enrolled = enrolled };
}

/* Is the fingerprint of the key pub the one the record carries? */
static bool fp_is(const uint8_t pub[32], const char *fp) {
        char mine[DIR_KEY_FP_LEN + 1];
        dir_key_fp(pub, mine);
        return strcmp(mine, fp) == 0;
}

/* The record's key, if it is one and its fingerprint is the record's. */
static bool record_key(const dir_record *rec, uint8_t ret_pub[32]) {
        return rec->key[0] && efcp_key_parse(rec->key, ret_pub) == 0 && fp_is(ret_pub, rec->fp);
}

int dir_record_status(const dir_record *rec) {
        if (strcmp(rec->host, the_hosts.self) == 0)
                return CTL_DIR_ST_SELF;
        hostrec *h = hosts_by_name(rec->host);
        if (h) {
                uint8_t pub[32];
                efcp_peer_public_key(h->p->ep, pub);
                if (!fp_is(pub, rec->fp))
                        return CTL_DIR_ST_FP_MISMATCH;
                return h->from_directory ? CTL_DIR_ST_TRUSTED : CTL_DIR_ST_USABLE;
        }
        if (!trust_keys)
                return CTL_DIR_ST_NOT_ENROLLED;
        uint8_t pub[32];
        conf_addr addr;
        if (!record_key(rec, pub) || !conf_addr_parse(rec->addr, strlen(rec->addr), &addr))
                return CTL_DIR_ST_BAD_KEY;
        return CTL_DIR_ST_TRUSTABLE;
}

bool dir_record_reachable(const dir_record *rec) {
        int st = dir_record_status(rec);
        return st == CTL_DIR_ST_USABLE || st == CTL_DIR_ST_TRUSTED || st == CTL_DIR_ST_TRUSTABLE;
}

/* Enrol the host of a TRUSTABLE record: its status now. */
static int enrol(const dir_record *rec) {
        uint8_t pub[32];
        conf_addr addr;
        hostrec *h;
        if (!record_key(rec, pub) || !conf_addr_parse(rec->addr, strlen(rec->addr), &addr))
                return CTL_DIR_ST_BAD_KEY;
        int r = hosts_enrol(rec->host, pub, &addr, &h);
        if (r < 0) {
                log_error("directory: host %s (%s at %s): not enrolled: %s", rec->host, rec->fp, rec->addr,
                          r == -EEXIST ? "its key is another host's" : strerror(-r));
                return r == -ENOSPC || r == -ENOTCONN ? CTL_DIR_ST_NOT_ENROLLED : CTL_DIR_ST_BAD_KEY;
        }
        enrolled++;
        log_error("directory: host %s enrolled with the key etcd publishes for it (%s), at %s", rec->host, rec->fp,
                 rec->addr);
        return CTL_DIR_ST_TRUSTED;
}

bool dir_record_use(const dir_record *rec) {
        int st = dir_record_status(rec);
        if (st == CTL_DIR_ST_TRUSTABLE)
                st = enrol(rec);
        if (st == CTL_DIR_ST_USABLE || st == CTL_DIR_ST_TRUSTED)
                return true;
        unusable++;
        if (st == CTL_DIR_ST_FP_MISMATCH)
                key_refused++;
        log_debug("directory: %s on %s (fingerprint %s): not usable (status %d)", rec->name, rec->host, rec->fp,
                  st);
        return false;
}
