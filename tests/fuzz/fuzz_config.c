/* fuzz_config.c - libFuzzer target for whole configuration files (mh_config_load).
 *
 * The input is written to a memfd and loaded through its /proc/self/fd path, so the real code
 * path (inih with our line reader, the section collector, every check type's create()) runs.
 * A load either succeeds or produces a one-line error; it never crashes or leaks. */
#include "mh_check.h"
#include "mh_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-config", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64], err[MH_CONFIG_ERROR_MAX];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    err[0] = '\0';
    struct mh_config *cfg = mh_config_load(path, err, sizeof err);
    if (!cfg && (!err[0] || strchr(err, '\n')))
        abort(); /* a failed load always explains itself, in one line */
    mh_config_free(cfg);
    close(fd);
    return 0;
}
