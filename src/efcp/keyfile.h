/*
 * keyfile.h — this host's static key pair on disk, and public keys as text.
 *
 * The key lives in <state dir>/host.key: exactly 32 raw bytes (the X25519
 * private key), mode 0600, owned by the caller's uid. efcp_keyfile_load()
 * reads it, or on first start creates it atomically (a temporary file in the
 * same directory, written, fsynced, then linked to its name: a crash leaves
 * either no key or a whole one; two starting at once agree on one key). A
 * file of another size, readable or writable by group or others, not a
 * regular file, or owned by someone else is refused (-EPERM, -EBADMSG) and
 * never overwritten.
 *
 * Public keys as text: standard base64 (RFC 4648, with padding), 44
 * characters, as WireGuard writes them — for config files and `ipcf host key`.
 *
 * Pure file I/O, no global state; any thread.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define EFCP_KEYFILE_NAME "host.key"
#define EFCP_KEY_TEXT_LEN 44 /* base64 of 32 bytes, without the terminating NUL */

/* Loads (or creates) dir/host.key. ret_created: 1 if it was made now (may be
 * NULL). 0, or -EPERM (mode or owner), -EBADMSG (size), -errno of the I/O. */
int efcp_keyfile_load(const char *dir, uint8_t ret_priv[32], uint8_t ret_pub[32], int *ret_created);

/* The public key of dir/host.key if there is one; never makes one (for
 * `ipcfd --check-config`). 0, -ENOENT (no key yet), or load's errors. */
int efcp_keyfile_peek(const char *dir, uint8_t ret_pub[32]);

/* Writes pub as base64 into out (cap >= EFCP_KEY_TEXT_LEN + 1, NUL-terminated).
 * Returns EFCP_KEY_TEXT_LEN or -ENOBUFS. */
int efcp_key_format(const uint8_t pub[32], char *out, size_t cap);
/* Parses a base64 public key (surrounding spaces allowed); 0, or -EINVAL. */
int efcp_key_parse(const char *text, uint8_t ret_pub[32]);
