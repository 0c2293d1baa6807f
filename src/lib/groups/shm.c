/*
 * shm.c — named segments in the POSIX style: ipcf_shm_open / ipcf_shm_unlink
 * (shm_open semantics, but the facility keeps the name, checks the mode
 * against kernel credentials, and lists the segment). The descriptor
 * returned belongs to the caller.
 */
#include <errno.h>
#include <fcntl.h>

#include "common/util.h"
#include "lib/core/lib.h"

int ipcf_shm_open(const char *name, int oflag, mode_t mode) {
        if (!ctl_name_valid(name) || (mode & ~(mode_t)0777) ||
            (oflag & ~(O_CREAT | O_EXCL | O_RDWR | O_RDONLY | O_CLOEXEC)) ||
            (oflag & O_ACCMODE) == O_WRONLY)
                return -EINVAL;
        uint32_t fl = ((oflag & O_CREAT) ? CTL_SHM_CREAT : 0) | ((oflag & O_EXCL) ? CTL_SHM_EXCL : 0) |
                      ((oflag & O_ACCMODE) == O_RDWR ? CTL_SHM_RDWR : 0);
        conn_call *c = conn_call_new(CTL_SHM_OPEN);
        if (!c)
                return -ENOMEM;
        ctl_put_str(&c->req, CTL_A_NAME, name);
        ctl_put_u32(&c->req, CTL_A_SHM_FLAGS, fl);
        ctl_put_u32(&c->req, CTL_A_SHM_MODE, (uint32_t)mode);
        int r = conn_call_run(c, NULL, 0);
        if (r == 0) {
                if (c->rep.n_fds == 1) {
                        r = c->rep.fds[0]; /* received close-on-exec */
                        c->rep.fds[0] = -1;
                } else {
                        r = -EPROTO;
                }
        }
        conn_call_free(c);
        return r;
}

int ipcf_shm_unlink(const char *name) {
        return conn_tell(CTL_SHM_UNLINK, name, 0, NULL, 0);
}
