/* fuzz_fpm_status.c - libFuzzer target for the PHP-FPM JSON status parser and its judgement.
 *
 * The status body comes from whatever answers on the status socket; the parser (jansson with
 * our field checks) must reject garbage with a message and never read past the given length. The
 * input is copied to a buffer of exactly its size so ASan catches any read beyond it. */
#include "mh_fpm_status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    if (size)
        memcpy(text, data, size);
    struct mh_fpm_status st;
    char err[256] = "";
    if (mh_fpm_status_parse(text, size, &st, err, sizeof err) < 0) {
        if (err[0] == '\0')
            abort();
    } else {
        double util = mh_fpm_utilisation(&st);
        if (!isfinite(util) || util < 0)
            abort();
        const struct mh_fpm_limits lim = {1, 10, 80, 95};
        char why[256];
        enum mh_status s = mh_fpm_status_assess(&st, &lim, size % 2 == 0, why, sizeof why);
        if (s != MH_PASS && s != MH_WARN && s != MH_FAIL)
            abort();
        if (why[0] == '\0')
            abort();
    }
    free(text);
    return 0;
}
