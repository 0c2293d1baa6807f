/*
 * names.h — test helpers that ask the real daemon about names (they link
 * libipcf, so they live apart from the harness, which the engine's tests use
 * without it).
 */
#pragma once

/* Wait until name is registered with the daemon of IPCF_RUNTIME_DIR (at most
 * timeout_ms); fails the test otherwise. */
void test_wait_for_name(const char *name, int timeout_ms);

/* Wait until name is no longer registered (at most timeout_ms); fails the
 * test otherwise. */
void test_wait_for_name_gone(const char *name, int timeout_ms);

/* Wait until n flows allocated to name (a service's or endpoint's channels)
 * have something queued towards it, per the daemon's listing (at most
 * timeout_ms); fails the test otherwise. */
void test_wait_queued(const char *name, int n, int timeout_ms);
