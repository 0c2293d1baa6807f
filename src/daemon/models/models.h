/*
 * models.h — the daemon's communication models beyond flows: notifications
 * (notify.c), mailboxes (mbox.c) and multicast groups (mcast.c), and the
 * hooks the rest of the daemon calls (docs/MODELS.md).
 *
 * STATE lives in one `models` object hung off ipcfd.models, made on first
 * use; every function here is called from the daemon's single thread.
 *
 * BOUNDS (every resource a client can make the daemon hold):
 *   notification sockets   one per client
 *   watches                NOTIFY_WATCH_MAX per client
 *   mailboxes + groups     MODELS_PER_USER per uid, MODELS_MAX in all
 *   queued messages        each mailbox/group's own max_msgs / max_bytes
 *                          (capped, see mbox.c / mcast.c)
 *   broker flows           the flow quota of the client + BROKER_FLOWS_MAX
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/ctl.h"
#include "daemon/core/ipcfd.h"

struct client;
struct flow;
struct bport;

#define NOTIFY_WATCH_MAX 64
#define MODELS_PER_USER 64
#define MODELS_MAX 1024

typedef struct models {
        idmap subs;                 /* notify_sub by client id */
        struct dlist sub_list;      /* notify_sub.link */
        struct dlist mboxes;        /* mbox.link */
        struct dlist groups;        /* mcast.link */
        size_t n_objects;           /* mailboxes + groups */
} models;

/* The models state of d, made on first use (NULL only if out of memory). */
models *models_of(ipcfd *d);

/* ---- hooks (client.c, alloc.c, flow.c, registry.c, main.c) ---------------- */

/* client.c: a request type of ours? Handles it and returns 0 / < 0 to drop
 * the client; returns 1 if the type is not ours. */
int models_dispatch(struct client *c, const ctl_msg *m);
/* alloc.c: an ALLOC whose ROLE is a mailbox/group role. Takes *reply_fd;
 * replies itself. Returns 0, or < 0 to drop the client. */
int models_alloc(struct client *c, const ctl_msg *m, const char *name, const ipcf_qos *qos,
                 unsigned role, int *reply_fd);
/* Is this role one of ours? */
bool models_role(unsigned role);
/* client.c: c is gone. */
void models_client_gone(struct client *c);
/* flow.c: side idx of f has ended (end record written). */
void models_flow_side_ended(struct flow *f, int idx);
/* registry.c: a registration of name appeared / one disappeared. */
void models_name_changed(ipcfd *d, const char *name);
/* main.c: shutdown, before flow_free_all(). */
void models_free_all(ipcfd *d);

/* ---- notify.c --------------------------------------------------------------- */

int notify_handle_open(struct client *c, const ctl_msg *m);
int notify_handle_watch(struct client *c, const ctl_msg *m, bool on);
/* Tell watchers of name that it is now up (up) or down. */
void notify_name(ipcfd *d, const char *name, bool up, pid_t pid);
/* Is name reachable now (registered, or a mailbox/group)? */
bool notify_name_is_up(ipcfd *d, const char *name, pid_t *ret_pid);
void notify_client_gone(struct client *c);
void notify_free_all(ipcfd *d);

/* ---- mbox.c, mcast.c --------------------------------------------------------- */

int mbox_handle_create(struct client *c, const ctl_msg *m);
int mbox_handle_destroy(struct client *c, const ctl_msg *m);
int mbox_alloc(struct client *c, const char *name, const ipcf_qos *qos, unsigned role,
               int *reply_fd, uint32_t seq);
bool mbox_exists(ipcfd *d, const char *name);
void mbox_free_all(ipcfd *d);
int mcast_handle_create(struct client *c, const ctl_msg *m);
int mcast_handle_destroy(struct client *c, const ctl_msg *m);
int mcast_alloc(struct client *c, const char *name, const ipcf_qos *qos, int *reply_fd,
                uint32_t seq);
bool mcast_exists(ipcfd *d, const char *name);
void mcast_free_all(ipcfd *d);
/* LIST of mailboxes and groups: put() once per object. */
typedef void (*models_put_fn)(void *arg, const struct ctl_model_entry_wire *e);
void mbox_list(ipcfd *d, models_put_fn put, void *arg);
void mcast_list(ipcfd *d, models_put_fn put, void *arg);
size_t mbox_count_owned(ipcfd *d, uid_t uid);
size_t mcast_count_owned(ipcfd *d, uid_t uid);
int models_handle_list(struct client *c, const ctl_msg *m);
/* Count of objects owned by uid (quota). */
size_t models_owned_by(ipcfd *d, uid_t uid);
