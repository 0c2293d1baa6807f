/*
 * dirtest.h — what the tests of the directory in the daemon share
 * (test-dir-daemons, test-dir-hostile): servers on a host of a hostset,
 * allocations by name until the directory has heard of it, real bytes both
 * ways, the directory's health through the library, the CLI on a host, and
 * records written into etcd as another writer would.
 *
 * A server runs in a fresh process (the test program executed again with
 * DIRTEST_SERVE=name: the library keeps the runtime directory of its first
 * use, and the test process uses its own host's); a constructor here turns
 * such a process into the server before main.
 *
 * Test support only: a failed step fails the case (test.h).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "ipcf.h"
#include "support/hostset.h"

/* Fork a process on host `host` of s registering name and echoing every flow
 * until its daemon goes (or it is killed). Returns its pid. */
pid_t dirtest_serve(const hostset *s, int host, const char *name);

/* A process on host `host` that registers name, unregisters it after ms
 * (ipcf_dealloc of the registration) and stays alive until killed. */
pid_t dirtest_serve_unregister(const hostset *s, int host, const char *name, int ms);

/* Real bytes both ways on port: count messages of varied sizes, checked. */
void dirtest_echo_check(int port, int count);

/* ipcf_alloc(name) again (every 50 ms, each with timeout 5 s) while it
 * fails with until_not, bounded by ms; the last result. */
int dirtest_alloc_until(const char *name, int until_not, int ms, ipcf_reason *why);

/* Allocate name (retrying while it is ENOENT, up to 10 s), check bytes both
 * ways and deallocate; the host that served it (after '@' in the peer's
 * name) in host. Returns host. */
const char *dirtest_use(const char *name, char *host, size_t size);

/* The next NAME_UP or NAME_DOWN (IPCF_EVENT_*) of name on this process's
 * notification channel, within ms; 0 if none came. */
int dirtest_next_name_event(const char *name, int ms);

/* A public key nobody holds (base64) and its fingerprint ("sha256:" hex),
 * for records written straight into etcd. */
void dirtest_fresh_key(char key[64], char fp[80]);

/* A daemon's config text for the directory on one etcd endpoint, as the
 * directory's probes use it: ttl_s = 2, request_timeout_ms = 1500, every
 * name allocatable from every host (a static buffer). */
const char *dirtest_conf(const char *endpoint);
/* ... with more [directory] lines (dir_keys: "KEY = VALUE\n"...). */
const char *dirtest_conf_with(const char *endpoint, const char *dir_keys);

/* The directory's health on this process's host (ipcf_hosts), now. */
ipcf_dir_health dirtest_health(void);

/* Start host i of s enrolling the hosts whose bit is in mask (as
 * hostset_start_enrol) with config extra, the daemon's stderr (its log)
 * going to log_path (appended; a failure to start is said there too). */
void dirtest_start_logged(hostset *s, int i, const char *extra, unsigned mask, const char *log_path);

/* The directory's health on this process's host (ipcf_hosts), until
 * live == want_live (bounded by ms); whether it came. */
bool dirtest_live_becomes(bool want_live, int ms, ipcf_dir_health *ret);

/* `ipcf ARGS` (a shell fragment) on host i of s, as uid (0: this process's);
 * its exit status, its output in *ret_out (malloc'ed). */
int dirtest_ipcf_on(const hostset *s, int i, unsigned uid, const char *args, char **ret_out);

/* etcd's answer (JSON text, malloc'ed) to a range read at url of the key
 * /ipcf/names/NAME/HOST, with more fields of the request (",\"count_only\":true"). */
char *dirtest_record_range(const char *url, const char *name, const char *host, const char *more);

/* Put key = value through the etcd JSON gateway at url (curl(1)), as any
 * writer with access could. */
void dirtest_put_raw(const char *url, const char *key, const char *value);

/* A TCP socket listening on 127.0.0.1 at a free port (in *port): where a
 * test plays a hostile "etcd member". */
int dirtest_listen(int *port);
