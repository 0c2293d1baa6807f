/*
 * test-hostwire.c — the control messages between daemons (common/hostwire.c):
 * every type round trips; every field a remote daemon could get wrong is
 * refused (truncation at every length, trailing bytes, unknown type and
 * version, reserved bits, bad names and strings, a bad qos, reserved ports,
 * also in CONSUMED and DELIVERED);
 * and the seed corpus of fuzz/fuzz-hostwire is written from these messages
 * (HOSTWIRE_WRITE_CORPUS=dir).
 */
#include <fcntl.h>
#include <unistd.h>

#include "common/ctl.h"
#include "common/hostwire.h"
#include "support/test.h"

static hw_msg sample(uint8_t type) {
        hw_msg m;
        memset(&m, 0, sizeof(m));
        m.type = type;
        m.req = 0x0102030405060708ull;
        m.port = 77;
        m.timeout_ms = 5000;
        m.role = CTL_ROLE_CALL;
        ipcf_qos_init(&m.qos);
        ctl_qos_normalize(&m.qos);
        m.who = (hw_ident){ .pid = 4242, .uid = 1000, .gid = 100 };
        strcpy(m.who.prog, "ipcf");
        m.err = ECONNREFUSED;
        m.code = IPCF_END_REFUSED;
        m.boot = 99;
        m.count = 0x1112131415161718ull;
        strcpy(m.name, type == HW_HELLO ? "alpha" : "printer");
        strcpy(m.user, "alice");
        strcpy(m.reason, "busy, come back later");
        return m;
}

/* What hw_parse keeps of a message of that type (the rest is zero). */
static void keep_fields(hw_msg *m) {
        hw_msg k;
        memset(&k, 0, sizeof(k));
        k.type = m->type;
        switch (m->type) {
        case HW_HELLO: k.boot = m->boot; strcpy(k.name, m->name); break;
        case HW_ALLOC:
                k.req = m->req; k.port = m->port; k.timeout_ms = m->timeout_ms; k.role = m->role;
                k.qos = m->qos; k.who = m->who; strcpy(k.name, m->name); strcpy(k.user, m->user);
                break;
        case HW_ACCEPT: k.req = m->req; k.port = m->port; k.who = m->who; k.qos = m->qos; break;
        case HW_REFUSE: k.req = m->req; k.err = m->err; k.code = m->code; strcpy(k.reason, m->reason); break;
        case HW_CANCEL: k.req = m->req; break;
        case HW_DEALLOC: k.port = m->port; k.code = m->code; strcpy(k.reason, m->reason); break;
        case HW_CONSUMED:
        case HW_DELIVERED: k.port = m->port; k.count = m->count; break;
        }
        if (m->type == HW_ACCEPT)
                strcpy(k.who.prog, m->who.prog);
        *m = k;
}

TEST_TIMEOUT(hostwire_round_trip_every_type, 10) {
        const char *dir = getenv("HOSTWIRE_WRITE_CORPUS");
        for (uint8_t t = HW_HELLO; t < HW_TYPE_MAX_; t++) {
                hw_msg m = sample(t), back;
                uint8_t buf[HW_MSG_MAX];
                int n = CHECK_OK(hw_build(&m, buf, sizeof(buf)));
                CHECK_OK(hw_parse(buf, (size_t)n, &back));
                keep_fields(&m);
                CHECK_MEM(&back, &m, sizeof(m));
                /* every cut is refused, and so is one byte more */
                for (int k = 0; k < n; k++)
                        CHECK_ERR(hw_parse(buf, (size_t)k, &back), -EBADMSG);
                buf[n] = 0;
                CHECK_ERR(hw_parse(buf, (size_t)n + 1, &back), -EBADMSG);
                /* too small a buffer */
                CHECK_ERR(hw_build(&m, buf, (size_t)n - 1), -ENOBUFS);
                if (dir) {
                        char path[512];
                        snprintf(path, sizeof(path), "%s/type-%u", dir, t);
                        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                        CHECK(fd >= 0 && write(fd, buf, (size_t)n) == n);
                        close(fd);
                }
        }
}

TEST_TIMEOUT(hostwire_refuses_what_a_daemon_could_get_wrong, 10) {
        uint8_t buf[HW_MSG_MAX];
        hw_msg m = sample(HW_ALLOC), back;
        int n = CHECK_OK(hw_build(&m, buf, sizeof(buf)));
        uint8_t t[HW_MSG_MAX];
#define MUTATE(off, val, want)                                                \
        do {                                                                  \
                memcpy(t, buf, (size_t)n);                                    \
                t[off] = (val);                                               \
                CHECK_ERR(hw_parse(t, (size_t)n, &back), want);               \
        } while (0)
        MUTATE(0, 0, -EBADMSG);            /* type 0 */
        MUTATE(0, HW_TYPE_MAX_, -EBADMSG); /* unknown type */
        MUTATE(1, 2, -EPROTONOSUPPORT);    /* another version */
        MUTATE(2, 1, -EBADMSG);            /* flags */
        MUTATE(3, 0x80, -EBADMSG);
        MUTATE(4 + 8 + 4 + 4, CTL_ROLE_MAX_, -EBADMSG); /* role */
        MUTATE(4 + 8 + 4 + 4 + 1, 1, -EBADMSG);         /* reserved after the role */
        size_t qos = 4 + 8 + 4 + 4 + 4;
        MUTATE(qos + 0, 9, -EBADMSG);      /* capacity */
        MUTATE(qos + 1, 2, -EBADMSG);      /* mode */
        MUTATE(qos + 2, 3, -EBADMSG);      /* full */
        MUTATE(qos + 3, 1, -EBADMSG);      /* reserved */
        MUTATE(qos + 16, 0xff, -EBADMSG);  /* max_msg_size beyond the limit */
        size_t name = qos + 28 + 12;
        MUTATE(name + 1, ' ', -EBADMSG);   /* a blank in the name */
        MUTATE(name + 1, 0, -EBADMSG);     /* a NUL */
        MUTATE(name, 0, -EBADMSG);         /* an empty name (the rest then trails) */
        MUTATE(name, 200, -EBADMSG);       /* longer than the message */
        /* a reserved port */
        m.port = HW_CONTROL_PORT;
        CHECK_ERR(hw_build(&m, buf, sizeof(buf)), -EINVAL);
        m.port = 0;
        CHECK_ERR(hw_build(&m, buf, sizeof(buf)), -EINVAL);
        /* nor for a count of records read or taken */
        for (uint8_t type = HW_CONSUMED; type <= HW_DELIVERED; type++) {
                hw_msg c = sample(type);
                c.port = HW_CONTROL_PORT;
                CHECK_ERR(hw_build(&c, buf, sizeof(buf)), -EINVAL);
                c.port = 0;
                CHECK_ERR(hw_build(&c, buf, sizeof(buf)), -EINVAL);
                /* and as parsed: the port's bytes rewritten in a good one */
                c.port = 77;
                uint8_t t8[HW_MSG_MAX];
                CHECK_EQ(hw_build(&c, t8, sizeof(t8)), 16);
                t8[7] = (uint8_t)HW_CONTROL_PORT;
                CHECK_ERR(hw_parse(t8, 16, &back), -EBADMSG);
                t8[7] = 0;
                CHECK_ERR(hw_parse(t8, 16, &back), -EBADMSG);
        }
        /* a refusal must carry an errno */
        hw_msg r = sample(HW_REFUSE);
        r.err = 0;
        CHECK_ERR(hw_build(&r, buf, sizeof(buf)), -EINVAL);
        r.err = 5000;
        CHECK_ERR(hw_build(&r, buf, sizeof(buf)), -EINVAL);
        /* a control character in a reason */
        hw_msg d = sample(HW_DEALLOC);
        d.reason[3] = '\n';
        CHECK_ERR(hw_build(&d, buf, sizeof(buf)), -EINVAL);
        /* a user name too long for its field cannot be written */
        CHECK_ERR(hw_parse(buf, HW_MSG_MAX + 1, &back), -EBADMSG);
        CHECK_ERR(hw_parse(NULL, 0, &back), -EBADMSG);
}
