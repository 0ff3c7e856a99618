/* mh_types.c - names of the shared enums, as they appear in bodies, logs and metrics. */
#include "mh_types.h"

const char *mh_status_name(enum mh_status s)
{
    switch (s) {
    case MH_PASS:
        return "pass";
    case MH_WARN:
        return "warn";
    default:
        return "fail";
    }
}

const char *mh_role_name(enum mh_role r)
{
    switch (r) {
    case MH_ROLE_WRITER:
        return "writer";
    case MH_ROLE_READER:
        return "reader";
    default:
        return "unknown";
    }
}
