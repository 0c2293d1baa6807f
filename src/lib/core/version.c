/*
 * version.c — ipcf_version(): the version of the library that is running,
 * fixed when it was built (the header's IPCF_VERSION_* then).
 */
#include "ipcf.h"

uint32_t ipcf_version(void) {
        return (uint32_t)IPCF_VERSION_MAJOR << 16 | (uint32_t)IPCF_VERSION_MINOR;
}
