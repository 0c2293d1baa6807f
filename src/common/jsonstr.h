/*
 * jsonstr.h — a string as a JSON string literal (RFC 8259), whatever its
 * bytes: the JSON text stays UTF-8 even when the string is not (a program
 * name the kernel cut inside a character, a path in Latin-1, a string an
 * RPC server sent). Used by every JSON the tools print: `ipcf`'s listings
 * and events, and `ipcf rpc call`'s results (src/idl/dyn.c).
 */
#pragma once

#include <stddef.h>
#include <stdio.h>

/* Print the n bytes of s as a JSON string, quotes included: UTF-8 as it is,
 * '"' and '\\' escaped, control characters and bytes that are not UTF-8 as
 * \u00XX (Latin-1's reading of the byte). */
void json_put_string(FILE *out, const char *s, size_t n);
