/*
 * mcast.c — multicast groups (docs/MODELS.md). Placeholder until written.
 */
#include <errno.h>

#include "daemon/broker.h"
#include "daemon/client.h"
#include "daemon/models.h"

int mcast_handle_create(client *c, const ctl_msg *m) { return client_reply_error(c, m->seq, -EOPNOTSUPP), 0; }
int mcast_handle_destroy(client *c, const ctl_msg *m) { return client_reply_error(c, m->seq, -ENOENT), 0; }
int mcast_alloc(client *c, const char *name, const ipcf_qos *qos, int *reply_fd, uint32_t seq) {
        (void)name; (void)qos;
        bport_refuse(c, seq, reply_fd, -ENOENT, NULL);
        return 0;
}
bool mcast_exists(ipcfd *d, const char *name) { (void)d; (void)name; return false; }
void mcast_free_all(ipcfd *d) { (void)d; }
void mcast_list(ipcfd *d, models_put_fn put, void *arg) { (void)d; (void)put; (void)arg; }
size_t mcast_count_owned(ipcfd *d, uid_t uid) { (void)d; (void)uid; return 0; }
