/*
 * group.c — chaos rounds of a shared-memory group: the driver creates a
 * group, processes 0, 1 and 2 join it and each makes the round's number of
 * updates of one counter in the group's memory under the group's lock
 * (lock, read, pause the round's pace, write the value plus one, unlock). At the end the driver
 * takes the lock itself, reads the counter and dissolves the group.
 *
 * What a group promises (include/ipcf.h, docs/GROUPS.md): the lock tells
 * when its holder died holding it (IPCF_GROUP_INCONSISTENT to the next
 * locker). So an update is never lost silently: the counter is the number
 * of completed updates, or one more when a process was killed between its
 * write and marking it done (with a killed process); and a process killed
 * while it held the lock must be reported to a later locker (the driver
 * locks last, so there always is one). Each update is a unit; a death in
 * the lock that nobody was told of is counted lost unreported. Rounds never
 * kill the daemon.
 */
#include <errno.h>
#include <unistd.h>

#include "ipcf.h"
#include "models.h"

#define GROUP_PROCS 3

/* Take the lock of g (waiting as long as it takes, in 1 s steps); 1 when the
 * previous holder died holding it (then marked consistent), 0, or an error. */
static int group_lock(int g) {
        int r;
        while ((r = ipcf_group_lock(g, 1000)) == -ETIMEDOUT)
                ;
        if (r == IPCF_GROUP_INCONSISTENT) {
                int c = ipcf_group_consistent(g);
                return c < 0 ? c : 1;
        }
        return r;
}

/* One update: counter + 1. 0, or an error (the lock is then released). */
static int group_update(chaos_book *b, unsigned p, int g) {
        int r = group_lock(g);
        if (r < 0)
                return r;
        atomic_store(&b->holding[p], 1);
        if (r == 1)
                atomic_fetch_add(&b->told[p], 1);
        uint64_t v = 0;
        ssize_t n = ipcf_group_read(g, 0, &v, sizeof(v));
        if (n == (ssize_t)sizeof(v)) {
                if (b->pace_us) /* work in the critical section: kills land there */
                        usleep(b->pace_us);
                v++;
                n = ipcf_group_write(g, 0, &v, sizeof(v));
        }
        if (n == (ssize_t)sizeof(v))
                atomic_fetch_add(&b->ops[p], 1);
        atomic_store(&b->holding[p], 0);
        int u = ipcf_group_unlock(g);
        return n < 0 ? (int)n : u;
}

static void group_run(chaos_book *b, unsigned p) {
        int g = ipcf_group_join(b->name);
        if (g < 0) {
                chaos_book_error(b, g);
                return;
        }
        chaos_set_bit(&b->ready, p);
        for (uint32_t i = 0; i < b->n_msgs; i++) {
                int r = group_update(b, p, g);
                if (r < 0) {
                        chaos_book_error(b, r);
                        break;
                }
        }
        chaos_set_bit(&b->done, p);
        ipcf_dealloc(g, NULL);
}

static int group_setup(chaos_book *b, uint64_t *rng) {
        (void)rng;
        return ipcf_group_create(b->name, 4096, NULL);
}

/* Once every process ended: the driver's lock, the counter, the dissolve. */
static void group_step(chaos_book *b, uint32_t alive, uint64_t quiet_ms) {
        (void)quiet_ms;
        if (alive || b->ended)
                return;
        b->ended = true;
        int g = ipcf_group_join(b->name);
        int r = g < 0 ? g : group_lock(g);
        if (r >= 0) {
                b->final_told = r == 1;
                uint64_t v = 0;
                if (ipcf_group_read(g, 0, &v, sizeof(v)) == (ssize_t)sizeof(v))
                        b->final_value = (int64_t)v;
                ipcf_group_unlock(g);
        } else {
                chaos_book_error(b, r);
        }
        if (g >= 0)
                ipcf_dealloc(g, NULL);
        r = ipcf_group_dissolve(b->name);
        if (r < 0)
                chaos_book_error(b, r);
}

static void group_tally(const chaos_book *b, chaos_tally *t) {
        uint64_t done = 0, told = b->final_told;
        bool killed = false, killed_holding = false;
        for (unsigned p = 0; p < GROUP_PROCS; p++) {
                done += atomic_load(&b->ops[p]);
                told += (uint64_t)atomic_load(&b->told[p]);
                killed |= b->killed[p];
                killed_holding |= b->killed[p] && atomic_load(&b->holding[p]);
        }
        uint64_t value = (uint64_t)b->final_value;
        t->sent += value > done ? value : done;
        t->delivered += value < done ? value : done;
        if (value < done)
                t->lost_unreported += done - value; /* updates lost */
        else if (value == done + 1 && killed)
                t->with_killed++;                   /* made, not marked, by the killed */
        else if (value > done)
                t->duplicates += value - done;
        if (killed_holding) {                       /* a death in the lock: told? */
                t->sent++;
                if (told)
                        t->reported++;
                else
                        t->lost_unreported++;
        }
}

const chaos_model chaos_model_group = {
        .name = "group",
        .procs = GROUP_PROCS,
        .daemon_kill_ok = false,
        .setup = group_setup,
        .run = group_run,
        .step = group_step,
        .tally = group_tally,
};
