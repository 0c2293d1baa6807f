/*
 * test-ctlschema.c — the control protocol's schema (common/ctlschema.c) and
 * its checker: every request type has one row, every row names known
 * attributes, and ctl_args_parse() enforces the rules the daemon relies on
 * (framing errors win over bad values, required attributes, names, repeated
 * attributes, descriptor counts, reply types refused). Pure code; the daemon
 * side of the same rules is in test-daemon-core (malformed_messages).
 */
#include "common/ctlschema.h"
#include "common/flowmem.h"
#include "common/util.h"
#include "support/test.h"

/* Build a message of type with the attributes appended by fill. */
typedef void (*fill_fn)(ctl_builder *b);

static int check(uint16_t type, fill_fn fill, unsigned n_fds, ctl_args *ret) {
        static ctl_builder b;
        ctl_msg m;
        ctl_begin(&b, type, 7);
        if (fill)
                fill(&b);
        CHECK(ctl_end(&b) > 0);
        CHECK_OK(ctl_msg_parse(b.buf, b.len, &m));
        return ctl_args_parse(&m, n_fds, ret);
}

TEST(every_request_has_one_row_of_known_attributes) {
        static const uint16_t replies[] = { CTL_OK, CTL_ERROR, CTL_REQUEST, CTL_FLOW, CTL_EVENT,
                                            CTL_MONITOR_EVENT };
        unsigned rows = 0;
        for (uint16_t t = 1; t < CTL_TYPE_MAX_; t++) {
                const ctl_req_spec *s = ctl_req_spec_of(t);
                bool reply = false;
                for (size_t i = 0; i < ARRAY_SIZE(replies); i++)
                        reply |= replies[i] == t;
                /* A type is a request exactly when it is not a reply. */
                CHECK_EQ(s != NULL, !reply);
                if (!s)
                        continue;
                rows++;
                CHECK_EQ(s->type, t);
                CHECK(s->name && *s->name);
                CHECK(s->reply == CTL_OK || s->reply == CTL_FLOW);
                for (size_t i = 0; i < CTL_ROW_ARGS_MAX && s->args[i].attr; i++) {
                        uint16_t a = s->args[i].attr;
                        CHECK(a < CTL_A_TYPE_MAX_);
                        CHECK(ctl_attr_table[a].kind != CTL_K_NONE);
                        if (s->args[i].flags & CTL_ARG_NAME)
                                CHECK_EQ(ctl_attr_table[a].kind, CTL_K_STR);
                }
                for (size_t i = 0; i < CTL_ROW_REPLY_MAX && s->reply_attrs[i]; i++)
                        CHECK(ctl_attr_table[s->reply_attrs[i]].kind != CTL_K_NONE);
        }
        CHECK_EQ(rows, CTL_TYPE_MAX_ - 1 - ARRAY_SIZE(replies));
        CHECK(ctl_req_spec_of(CTL_TYPE_MAX_) == NULL);
        CHECK(ctl_req_spec_of(0) == NULL);
        /* Every attribute type is described. */
        for (uint16_t a = 1; a < CTL_A_TYPE_MAX_; a++)
                CHECK(ctl_attr_table[a].kind != CTL_K_NONE && ctl_attr_table[a].name);
}

static void register_ok(ctl_builder *b) {
        ctl_put_str(b, CTL_A_NAME, "svc.a");
        ctl_put_u32(b, CTL_A_REG_FLAGS, 5);
        ctl_put_u32(b, CTL_A_BACKLOG, 9);
        ctl_put_u32(b, CTL_A_BACKLOG, 99); /* a repeat of a single attribute: the first counts */
        ctl_put_u64(b, CTL_A_QOS, 1);      /* not in the row: skipped, whatever its size */
        ctl_put_u32(b, 999, 1);            /* unknown: skipped */
}
static void register_no_name(ctl_builder *b) { ctl_put_u32(b, CTL_A_BACKLOG, 9); }
static void register_bad_name(ctl_builder *b) { ctl_put_str(b, CTL_A_NAME, "has space"); }
static void register_long_name(ctl_builder *b) {
        char n[300];
        memset(n, 'x', sizeof(n) - 1);
        n[sizeof(n) - 1] = 0;
        ctl_put_str(b, CTL_A_NAME, n);
}
/* A bad value and a framing error: the framing error wins. */
static void register_bad_both(ctl_builder *b) {
        ctl_put_str(b, CTL_A_NAME, "has space");
        ctl_put_u64(b, CTL_A_BACKLOG, 9);
}
static void register_unterminated(ctl_builder *b) { ctl_put(b, CTL_A_NAME, "abc", 3); }
static void register_two_nuls(ctl_builder *b) { ctl_put(b, CTL_A_NAME, "ab\0c", 5); }

TEST(values_and_framing) {
        ctl_args a;
        CHECK_OK(check(CTL_REGISTER, register_ok, 0, &a));
        CHECK_EQ(a.spec->type, CTL_REGISTER);
        CHECK(strcmp(ctl_arg_str(&a, CTL_A_NAME), "svc.a") == 0);
        CHECK_EQ(ctl_arg_u32(&a, CTL_A_REG_FLAGS, 0), 5);
        CHECK_EQ(ctl_arg_u32(&a, CTL_A_BACKLOG, 0), 9);
        CHECK(!ctl_arg_has(&a, CTL_A_QOS));
        CHECK_ERR(check(CTL_REGISTER, register_no_name, 0, &a), -EINVAL);
        CHECK_EQ(a.spec->type, CTL_REGISTER); /* set, for the reply */
        CHECK_ERR(check(CTL_REGISTER, register_bad_name, 0, &a), -EINVAL);
        CHECK_ERR(check(CTL_REGISTER, register_long_name, 0, &a), -EINVAL);
        CHECK_ERR(check(CTL_REGISTER, register_bad_both, 0, &a), -EBADMSG);
        CHECK_ERR(check(CTL_REGISTER, register_unterminated, 0, &a), -EBADMSG);
        CHECK_ERR(check(CTL_REGISTER, register_two_nuls, 0, &a), -EBADMSG);
        /* Absent optional attributes read as their defaults. */
        CHECK_OK(check(CTL_UNREGISTER, NULL, 0, &a));
        CHECK_EQ(ctl_arg_u64(&a, CTL_A_REG_ID, 0), 0);
        CHECK(ctl_arg_str(&a, CTL_A_REASON) == NULL);
}

static void register_no_name_ok(ctl_builder *b) { ctl_put_str(b, CTL_A_NAME, "x"); }
static void accept_one_id(ctl_builder *b) { ctl_put_u64(b, CTL_A_REG_ID, 3); }
static void accept_ok(ctl_builder *b) {
        ctl_put_u64(b, CTL_A_REG_ID, 3);
        ctl_put_u64(b, CTL_A_REQ_ID, 0x1122334455667788ull);
}

TEST(required_attributes_and_descriptors) {
        ctl_args a;
        CHECK_ERR(check(CTL_ACCEPT, accept_one_id, 0, &a), -EINVAL);
        CHECK_OK(check(CTL_ACCEPT, accept_ok, 0, &a));
        CHECK_EQ(ctl_arg_u64(&a, CTL_A_REQ_ID, 0), 0x1122334455667788ull);
        /* Descriptors: exactly the row's count. */
        CHECK_ERR(check(CTL_ACCEPT, accept_ok, 1, &a), -EBADMSG);
        CHECK_ERR(check(CTL_HELLO, NULL, 1, &a), -EBADMSG);
        CHECK_ERR(check(CTL_ALLOC, register_bad_name, 0, &a), -EBADMSG);
        CHECK_ERR(check(CTL_ALLOC, register_bad_name, 2, &a), -EBADMSG);
        CHECK_ERR(check(CTL_ALLOC, register_bad_name, 1, &a), -EINVAL);
        CHECK_OK(check(CTL_ALLOC, register_no_name_ok, 1, &a));
        /* A QOS of the wrong size in ALLOC (its row has QOS). */
        CHECK_ERR(check(CTL_ALLOC, register_ok, 1, &a), -EBADMSG);
        /* Daemon-to-client types are no requests. */
        CHECK_ERR(check(CTL_FLOW, NULL, 0, &a), -EBADMSG);
        CHECK_ERR(check(CTL_EVENT, NULL, 0, &a), -EBADMSG);
        CHECK_ERR(check(CTL_OK, NULL, 0, &a), -EBADMSG);
}

/* The table is the protocol's reference (ARCHITECTURE.md): the descriptors
 * its rows say a reply carries are those the daemon sends — a FLOW the seven
 * of flow_mem_side_fds() (flows/flow.c), the sockets and memfds one each, a
 * group's memfd and the ear of its notice channel. */
TEST(reply_descriptors_are_what_the_daemon_sends) {
        CHECK_EQ(ctl_req_spec_of(CTL_ACCEPT)->reply_fds, FLOW_SIDE_FDS);
        CHECK_EQ(ctl_req_spec_of(CTL_REGISTER)->reply_fds, 1);
        CHECK_EQ(ctl_req_spec_of(CTL_NOTIFY_OPEN)->reply_fds, 1);
        CHECK_EQ(ctl_req_spec_of(CTL_MONITOR_OPEN)->reply_fds, 1);
        CHECK_EQ(ctl_req_spec_of(CTL_SHM_OPEN)->reply_fds, 1);
        CHECK_EQ(ctl_req_spec_of(CTL_GROUP_JOIN)->reply_fds, 2);
        CHECK_EQ(ctl_req_spec_of(CTL_ALLOC)->reply_fds, 0); /* the FLOW comes on the reply socket */
}

static void create_allow(ctl_builder *b) {
        ctl_put_str(b, CTL_A_NAME, "g.a");
        ctl_put_u64(b, CTL_A_SHM_SIZE, 4096);
        ctl_put_u32(b, CTL_A_ALLOW_UID, 1);
        ctl_put_u32(b, CTL_A_ALLOW_UID, 2);
        ctl_put_str(b, CTL_A_ALLOW_NAME, "prog");
}
static void create_bad_second_allow(ctl_builder *b) {
        create_allow(b);
        ctl_put_u64(b, CTL_A_ALLOW_UID, 3); /* a later occurrence of a repeated one */
}
static void create_bad_second_name(ctl_builder *b) {
        create_allow(b);
        ctl_put(b, CTL_A_ALLOW_NAME, "xy", 2);
}

TEST(repeated_attributes_are_checked_every_time) {
        ctl_args a;
        CHECK_OK(check(CTL_GROUP_CREATE, create_allow, 0, &a));
        CHECK_EQ(ctl_arg_u32(&a, CTL_A_ALLOW_UID, 0), 1); /* the first */
        CHECK_ERR(check(CTL_GROUP_CREATE, create_bad_second_allow, 0, &a), -EBADMSG);
        CHECK_ERR(check(CTL_GROUP_CREATE, create_bad_second_name, 0, &a), -EBADMSG);
}

static void list_bad_skip(ctl_builder *b) { ctl_put_u64(b, CTL_A_LIST_SKIP, 1); }
static void mbox_short_opts(ctl_builder *b) {
        ctl_put_str(b, CTL_A_NAME, "box");
        ctl_put(b, CTL_A_MBOX_OPTS, "1234", 4);
}

TEST(fixed_and_integer_sizes) {
        ctl_args a;
        CHECK_ERR(check(CTL_LIST, list_bad_skip, 0, &a), -EBADMSG);
        CHECK_ERR(check(CTL_MODEL_LIST, list_bad_skip, 0, &a), -EBADMSG);
        CHECK_ERR(check(CTL_MBOX_CREATE, mbox_short_opts, 0, &a), -EBADMSG);
        struct ctl_mbox_opts_wire o;
        CHECK(!ctl_arg_fixed(&a, CTL_A_MBOX_OPTS, &o, sizeof(o)));
}
