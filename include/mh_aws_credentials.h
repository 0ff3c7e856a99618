/* mh_aws_credentials.h - AWS access keys for request signing (SigV4), from a shared credentials
 * file in the format of ~/.aws/credentials or from the standard environment variables.
 *
 * The parser is a pure function (fuzzed with the OpenSearch replies, unit-tested); it never puts
 * a key, secret or token into an error message. The values are secrets: callers wipe the struct
 * with mh_aws_credentials_wipe() when done. Lives in src/checks/aws_credentials.c. */
#ifndef MH_AWS_CREDENTIALS_H
#define MH_AWS_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>

#define MH_AWS_KEY_ID_MAX 129
#define MH_AWS_SECRET_MAX 129
#define MH_AWS_TOKEN_MAX  4097 /* STS session tokens run to about 2,000 characters */

struct mh_aws_credentials {
    char access_key_id[MH_AWS_KEY_ID_MAX];
    char secret_access_key[MH_AWS_SECRET_MAX];
    char session_token[MH_AWS_TOKEN_MAX]; /* empty for long-term keys */
};

/* Reads profile `profile` from a credentials file: "[NAME]" (or "[profile NAME]") sections of
 * `key = value` lines, with aws_access_key_id, aws_secret_access_key and the optional
 * aws_session_token; `#` and `;` start comments; other keys are ignored. Every value must be
 * printable ASCII without spaces. Returns 0, or -1 with a reason in `err` that names the
 * profile and the key but never a value. Never reads past `len`. */
int mh_aws_credentials_parse(const char *text, size_t len, const char *profile,
                             struct mh_aws_credentials *out, char *err, size_t errlen);

/* Takes AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the optional AWS_SESSION_TOKEN from the
 * environment, checked as above. Returns 0, or -1 with a reason in `err`. */
int mh_aws_credentials_from_env(struct mh_aws_credentials *out, char *err, size_t errlen);

/* True when both hold the same keys and token. */
bool mh_aws_credentials_equal(const struct mh_aws_credentials *a,
                              const struct mh_aws_credentials *b);

/* Overwrites the keys and token. */
void mh_aws_credentials_wipe(struct mh_aws_credentials *c);

#endif
