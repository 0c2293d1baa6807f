/*
 * dyn.h — values of an interface's types without generated code: JSON in,
 * XDR out, and XDR in, JSON out, walking the checked syntax tree. Used by
 * `ipcf rpc call` to call any procedure a server describes.
 *
 * JSON mapping: integers and floats are numbers (RFC 8259's grammar; a
 * float or double must be finite and in its type's range); bool true/false; an enum
 * its enumerator's name (or its number); a string a JSON string (printed
 * as UTF-8, with \u00XX for control characters and bytes not UTF-8); opaque
 * data a string of hex digits; arrays JSON arrays; optional data null or
 * the value; a struct an object of its members; a union an object of its
 * discriminant and its arm ({"status": 0, "ok": {...}}), the discriminant
 * under the key "switch" instead when an arm has its name ({"switch": 1,
 * "kind": 5} for union switch (int kind) { case 1: int kind; ... }); void
 * null; a list (a struct whose last member is optional data of its own
 * type) nested objects like any struct, of any length.
 *
 * Both directions are bounded: XDR depth (IPCF_XDR_MAX_DEPTH, a level per
 * typedef, struct and union, as generated code counts it; a list's nodes
 * are walked in a loop, a node a level), counts checked against their
 * bounds and against the bytes left before looping; decoding allocates
 * nothing per value (it prints as it goes). Nothing recurses per level of
 * the JSON text: the parser keeps the open containers on the heap (their
 * number is bounded by the text's length) and json_free walks a list.
 */
#pragma once

#include <stdio.h>

#include "idl/ast.h"
#include "ipcf.h"

typedef struct json json;

/* Parse text (NUL-terminated) into a tree; NULL with a message in err. */
json *json_parse(const char *text, char *err, size_t errcap);
void json_free(json *j);

/* Encode j as a value of type t (NULL: void) into x. 0, or -EINVAL with a
 * message in err. */
int dyn_encode(const idl_type *t, const json *j, ipcf_xdr *x, char *err, size_t errcap);
/* Decode a value of type t (NULL: void) from x and print it as JSON to out.
 * 0, or the stream's error. */
int dyn_print(const idl_type *t, ipcf_xdr *x, FILE *out);

/* The procedure named name (case-insensitive) in f: the highest version
 * that has it unless vers is not 0. */
const idl_proc *dyn_find_proc(const idl_file *f, const char *name, uint32_t vers, const idl_program **ret_prog,
                              const idl_version **ret_vers);
/* The argument type of p as one type (several arguments: their struct). */
const idl_type *dyn_arg_type(const idl_file *f, const idl_proc *p);
