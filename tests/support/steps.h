/*
 * steps.h — a parent and a forked child taking turns, through a pair of
 * pipes: step_send() on one side lets the other's step_wait() return. Every
 * wait is bounded (10 s) and fails the test when it runs out.
 */
#pragma once

struct steps {
        int to_child[2], to_parent[2];
};

/* Make both pipes (before the fork). */
void steps_init(struct steps *s);
/* One step to the other side: step_send(s.to_child[1]) from the parent,
 * step_send(s.to_parent[1]) from the child. */
void step_send(int fd);
/* Wait for one step on fd (s.to_parent[0] in the parent, s.to_child[0] in
 * the child). */
void step_wait(int fd);
