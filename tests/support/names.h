/*
 * names.h — test helpers that ask the real daemon about names, and one that
 * hands a process's handle numbers to ports of its own (they link libipcf, so
 * they live apart from the harness, which the engine's tests use without it).
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

/* Detach every handle number below 64 (as a loop closing what a process
 * inherited would), then open pipes (ipcf_pipe) until every number that was
 * live is a port of one again: their ports in ports[] (pairs: 2i and 2i+1),
 * their count returned. */
int test_reuse_handle_numbers(int ports[128]);
/* Each pipe of test_reuse_handle_numbers is as it was made: nothing queued
 * on either end, and a message goes each way. */
void test_reused_pipes_untouched(const int *ports, int n);
