/* fuzz_opensearch_health.c - libFuzzer target for what the opensearch check reads from the network
 * and from its credentials file: the _cluster/health parser and its judgement, the error-body
 * reason, and the AWS credentials parser (profiles "default" and "search").
 *
 * Every input goes through all of them. The input is copied to a buffer of exactly its size so
 * ASan catches any read beyond it. */
#include "mh_aws_credentials.h"
#include "mh_opensearch_health.h"

#include <stdlib.h>
#include <string.h>

static void health(const char *text, size_t size)
{
    struct mh_os_health h;
    char err[256] = "";
    if (mh_os_health_parse(text, size, &h, err, sizeof err) < 0) {
        if (err[0] == '\0')
            abort();
        return;
    }
    if (h.cluster_name[sizeof h.cluster_name - 1] != '\0' ||
        (h.has_active_percent && !(h.active_percent >= 0 && h.active_percent <= 100)))
        abort();
    char why[256] = "";
    for (int y = MH_PASS; y <= MH_FAIL; y++) {
        enum mh_status s = mh_os_health_assess(&h, (enum mh_status)y, why, sizeof why);
        if ((s != MH_PASS && s != MH_WARN && s != MH_FAIL) || why[0] == '\0' ||
            (h.timed_out && s != MH_FAIL))
            abort();
    }
}

static void reason(const char *text, size_t size)
{
    char out[160];
    memset(out, 'x', sizeof out);
    mh_os_error_reason(text, size, out, sizeof out);
    if (!memchr(out, '\0', sizeof out))
        abort();
}

static void credentials(const char *text, size_t size)
{
    static const char *const profiles[] = {"default", "search"};
    for (int i = 0; i < 2; i++) {
        struct mh_aws_credentials c;
        char err[256] = "";
        int rc = mh_aws_credentials_parse(text, size, profiles[i], &c, err, sizeof err);
        if (rc < 0 && (err[0] == '\0' || c.access_key_id[0] || c.secret_access_key[0]))
            abort();
        if (rc == 0 && (!c.access_key_id[0] || !c.secret_access_key[0]))
            abort();
        mh_aws_credentials_wipe(&c);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    if (size)
        memcpy(text, data, size);
    health(text, size);
    reason(text, size);
    credentials(text, size);
    free(text);
    return 0;
}
