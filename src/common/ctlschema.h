/*
 * ctlschema.h — the control protocol as data: what every attribute is on the
 * wire, and what every request carries and is answered with.
 *
 * ONE TABLE (ctlschema.c) says, for each request type: its attributes (each
 * with its wire kind from the attribute table, whether it is required,
 * whether it must be a valid ipcf name, whether it may repeat), how many file
 * descriptors come with it, and what the reply is (type, attributes,
 * descriptors). The daemon's dispatch table is made from it: a request is
 * checked against its row by ctl_args_parse() before any handler runs, so a
 * handler reads its arguments already checked (ctl_arg_*), never parses.
 * ctl.h documents the conversation in prose; this table is its checked form.
 *
 * CHECKS (ctl_args_parse), in this order — framing errors win over values:
 *   1. -EBADMSG (a protocol violation: the daemon drops the client): the
 *      type is no request (a reply or daemon-to-client type), the number of
 *      descriptors differs from the row's, or an attribute of the row is
 *      malformed: a u32/u64/fixed one of the wrong length, a string that is
 *      not one NUL-terminated string. The first occurrence of an attribute
 *      counts (a later one is ignored, as ctl_get_* do), except for REPEAT
 *      attributes, whose every occurrence is checked.
 *   2. -EINVAL (a bad value: answered with ERROR): a REQUIRED attribute is
 *      absent, or a NAME attribute is not a valid ipcf name.
 * Attributes the row does not name are skipped (forward compatibility), as
 * are unknown ones.
 *
 * Untrusted input: pure functions, fuzzed by fuzz/fuzz-ctlschema.c.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ctl.h"

/* Wire kinds of attributes. */
enum ctl_kind {
        CTL_K_NONE = 0, /* not an attribute type */
        CTL_K_U32,
        CTL_K_U64,
        CTL_K_STR,      /* NUL-terminated, no other NUL */
        CTL_K_FIXED,    /* a packed struct of ctl_attr_info.size bytes */
};

typedef struct ctl_attr_info {
        const char *name;   /* "NAME", for logs and the docs */
        uint8_t kind;       /* enum ctl_kind */
        uint16_t size;      /* CTL_K_FIXED: its size */
} ctl_attr_info;

/* The attribute table, indexed by enum ctl_attr_type (NULL name: unused). */
extern const ctl_attr_info ctl_attr_table[CTL_A_TYPE_MAX_];

/* Flags of an attribute in a request row. */
enum {
        CTL_ARG_REQUIRED = 1u << 0, /* absent: -EINVAL */
        CTL_ARG_NAME = 1u << 1,     /* a string that must be a valid ipcf name: else -EINVAL */
        CTL_ARG_REPEAT = 1u << 2,   /* may repeat; every occurrence is checked */
};

#define CTL_ROW_ARGS_MAX 8
#define CTL_ROW_REPLY_MAX 8

typedef struct ctl_arg_spec {
        uint16_t attr;      /* enum ctl_attr_type */
        uint16_t flags;     /* CTL_ARG_* */
} ctl_arg_spec;

/* One request type. reply_attrs and reply_fds document the OK (or FLOW) the
 * daemon answers with; a failure is always ERROR with ERRNO. */
typedef struct ctl_req_spec {
        uint16_t type;                              /* enum ctl_type */
        const char *name;                           /* "REGISTER" */
        uint8_t fds;                                /* descriptors the request carries */
        uint8_t reply_fds;                          /* descriptors its reply carries */
        uint16_t reply;                             /* CTL_OK, or CTL_FLOW for ACCEPT */
        ctl_arg_spec args[CTL_ROW_ARGS_MAX];        /* ends at attr 0 */
        uint16_t reply_attrs[CTL_ROW_REPLY_MAX];    /* ends at 0; a repeated one is listed once */
} ctl_req_spec;

/* The row of request type, or NULL if type is not a request a client may
 * send (OK, ERROR, REQUEST, FLOW, EVENT, unknown). */
const ctl_req_spec *ctl_req_spec_of(uint16_t type);

/* The arguments of a checked request: views into the message (borrowed: as
 * long as its buffer). */
typedef struct ctl_args {
        const ctl_req_spec *spec;
        const void *val[CTL_A_TYPE_MAX_];   /* first occurrence, NULL if absent */
        uint16_t len[CTL_A_TYPE_MAX_];
} ctl_args;

/* Check m (framed by ctl_msg_parse) and its n_fds descriptors against its
 * row (see CHECKS). Returns 0 and fills *ret, -EBADMSG, or -EINVAL (then
 * ret->spec is set, for the reply). */
int ctl_args_parse(const ctl_msg *m, unsigned n_fds, ctl_args *ret);

/* Typed views of checked arguments; an absent one yields dflt (NULL for a
 * string). Only for attributes of the request's row and their kind. */
bool ctl_arg_has(const ctl_args *a, uint16_t attr);
uint32_t ctl_arg_u32(const ctl_args *a, uint16_t attr, uint32_t dflt);
uint64_t ctl_arg_u64(const ctl_args *a, uint16_t attr, uint64_t dflt);
const char *ctl_arg_str(const ctl_args *a, uint16_t attr);
/* Copy a fixed-size attribute into out (size bytes) if present: true. */
bool ctl_arg_fixed(const ctl_args *a, uint16_t attr, void *out, size_t size);
