/*
 * grpshm.c — initialisation of a group's control page (see grpshm.h).
 * Called by the daemon on a memfd it just created, before anyone else has it.
 * Also the two decoders of values a member gets from outside (the mapped
 * size, the member id), fuzzed by fuzz/fuzz-group.c.
 */
#include "common/grpshm.h"

#include <errno.h>
#include <string.h>

#include "common/util.h"

void grpshm_ctl_init(struct grpshm_ctl *c, uint64_t size) {
        memset(c, 0, sizeof(*c));
        c->magic = GRPSHM_MAGIC;
        c->version = GRPSHM_VERSION;
        atomic_store(&c->size, size);
        atomic_store(&c->gen, 1);
}

uint64_t grpshm_map_size(uint64_t published, uint64_t file_size, uint64_t page) {
        uint64_t avail = file_size > GRPSHM_CTL_SIZE ? file_size - GRPSHM_CTL_SIZE : 0;
        return MIN(MIN(published, avail), GRPSHM_SIZE_MAX) / page * page;
}

int grpshm_member_decode(uint64_t member_id, uint32_t *ret_slot, uint32_t *ret_serial) {
        uint32_t slot = (uint32_t)(member_id & 0xff);
        uint64_t serial = member_id >> 8;
        if (serial == 0 || serial > GRPLOCK_SERIAL_MAX || slot >= GRPLOCK_SLOTS)
                return -EPROTO;
        *ret_slot = slot;
        *ret_serial = (uint32_t)serial;
        return 0;
}

uint64_t grpshm_member_id(uint32_t slot, uint32_t serial) {
        return (uint64_t)serial << 8 | slot;
}
