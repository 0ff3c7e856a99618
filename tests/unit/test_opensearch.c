/* test_opensearch.c - unit tests of the opensearch check's pure parts: the _cluster/health parser
 * and judgement, error-body reasons (mh_opensearch_health.h), and the AWS credentials file
 * parser (mh_aws_credentials.h). The HTTP half is tested against a stand-in cluster in
 * tests/test_opensearch.py. */
#include "mh_aws_credentials.h"
#include "mh_opensearch_health.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* The OpenSearch documentation's example response. */
static const char GREEN[] = "{\n"
                            "  \"cluster_name\" : \"opensearch-cluster\",\n"
                            "  \"status\" : \"green\",\n"
                            "  \"timed_out\" : false,\n"
                            "  \"number_of_nodes\" : 2,\n"
                            "  \"number_of_data_nodes\" : 2,\n"
                            "  \"discovered_master\" : true,\n"
                            "  \"active_primary_shards\" : 6,\n"
                            "  \"active_shards\" : 12,\n"
                            "  \"relocating_shards\" : 0,\n"
                            "  \"initializing_shards\" : 0,\n"
                            "  \"unassigned_shards\" : 0,\n"
                            "  \"delayed_unassigned_shards\" : 0,\n"
                            "  \"number_of_pending_tasks\" : 0,\n"
                            "  \"number_of_in_flight_fetch\" : 0,\n"
                            "  \"task_max_waiting_in_queue_millis\" : 0,\n"
                            "  \"active_shards_percent_as_number\" : 100.0\n"
                            "}\n";

static int parse(const char *text, struct mh_os_health *h, char *err)
{
    return mh_os_health_parse(text, strlen(text), h, err, 256);
}

static void test_documented_green_body(void **state)
{
    (void)state;
    struct mh_os_health h;
    char err[256] = "", why[256];
    assert_int_equal(parse(GREEN, &h, err), 0);
    assert_string_equal(h.cluster_name, "opensearch-cluster");
    assert_int_equal(h.color, MH_OS_GREEN);
    assert_false(h.timed_out);
    assert_int_equal(h.nodes, 2);
    assert_int_equal(h.data_nodes, 2);
    assert_int_equal(h.active_shards, 12);
    assert_int_equal(h.unassigned_shards, 0);
    assert_true(h.has_active_percent);
    assert_true(h.active_percent == 100.0);
    assert_int_equal(mh_os_health_assess(&h, MH_WARN, why, sizeof why), MH_PASS);
    assert_string_equal(why, "green: cluster opensearch-cluster, 2 nodes (2 data), 12 active "
                             "shards, 0 unassigned");
}

static void test_colours_and_timed_out(void **state)
{
    (void)state;
    struct mh_os_health h;
    char err[256], why[256];
    assert_int_equal(parse("{\"status\":\"yellow\",\"timed_out\":false}", &h, err), 0);
    assert_int_equal(mh_os_health_assess(&h, MH_WARN, why, sizeof why), MH_WARN);
    assert_non_null(strstr(why, "yellow: replica shards unassigned"));
    assert_int_equal(mh_os_health_assess(&h, MH_PASS, why, sizeof why), MH_PASS);
    assert_int_equal(mh_os_health_assess(&h, MH_FAIL, why, sizeof why), MH_FAIL);
    assert_int_equal(h.nodes, -1); /* absent counts are -1 and left out of the summary */
    assert_string_equal(why, "yellow: replica shards unassigned; cluster (unnamed)");
    assert_int_equal(parse("{\"status\":\"red\",\"timed_out\":false}", &h, err), 0);
    assert_int_equal(mh_os_health_assess(&h, MH_PASS, why, sizeof why), MH_FAIL);
    assert_non_null(strstr(why, "red:"));
    /* A green cluster whose health request timed out is no answer at all. */
    assert_int_equal(parse("{\"status\":\"green\",\"timed_out\":true}", &h, err), 0);
    assert_int_equal(mh_os_health_assess(&h, MH_PASS, why, sizeof why), MH_FAIL);
    assert_non_null(strstr(why, "timed out:"));
}

static void test_bad_bodies_are_refused_with_a_reason(void **state)
{
    (void)state;
    static const struct {
        const char *body, *says;
    } cases[] = {
        {"", "not JSON"},
        {"{\"status\":\"green\",", "not JSON"},
        {"[1,2]", "not a JSON object"},
        {"{\"timed_out\":false}", "no \"status\""},
        {"{\"status\":7,\"timed_out\":false}", "no \"status\""},
        {"{\"status\":\"purple\",\"timed_out\":false}", "unknown status \"purple\""},
        {"{\"status\":\"green\"}", "no \"timed_out\""},
        {"{\"status\":\"green\",\"timed_out\":\"no\"}", "no \"timed_out\""},
        {"{\"status\":\"green\",\"timed_out\":false,\"number_of_nodes\":-1}", "number_of_nodes"},
        {"{\"status\":\"green\",\"timed_out\":false,\"unassigned_shards\":1.5}", "unassigned"},
        {"{\"status\":\"green\",\"status\":\"red\",\"timed_out\":false}", "not JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mh_os_health h;
        char err[256] = "";
        assert_int_equal(parse(cases[i].body, &h, err), -1);
        if (!strstr(err, cases[i].says))
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, cases[i].says);
    }
}

static void test_parse_reads_only_len_bytes(void **state)
{
    (void)state;
    /* A valid body followed by bytes that would break it, outside the given length. */
    char buf[64];
    const char *body = "{\"status\":\"green\",\"timed_out\":false}";
    snprintf(buf, sizeof buf, "%sGARBAGE", body);
    struct mh_os_health h;
    char err[256];
    assert_int_equal(mh_os_health_parse(buf, strlen(body), &h, err, sizeof err), 0);
    assert_int_equal(mh_os_health_parse(buf, strlen(buf), &h, err, sizeof err), -1);
}

static void test_long_cluster_name_is_cut(void **state)
{
    (void)state;
    char body[512], name[300];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    snprintf(body, sizeof body,
             "{\"cluster_name\":\"%s\",\"status\":\"green\",\"timed_out\":false}", name);
    struct mh_os_health h;
    char err[256], why[64];
    assert_int_equal(parse(body, &h, err), 0);
    assert_int_equal(strlen(h.cluster_name), sizeof h.cluster_name - 1);
    assert_int_equal(mh_os_health_assess(&h, MH_WARN, why, sizeof why), MH_PASS);
    assert_int_equal(strlen(why), sizeof why - 1);
}

static void reason(const char *body, const char *want)
{
    char out[200];
    mh_os_error_reason(body, strlen(body), out, sizeof out);
    assert_string_equal(out, want);
}

static void test_error_reasons(void **state)
{
    (void)state;
    reason("{\"error\":{\"root_cause\":[{\"type\":\"security_exception\",\"reason\":\"no "
           "permissions for [cluster:monitor/health]\"}],\"type\":\"security_exception\","
           "\"reason\":\"no permissions for [cluster:monitor/health]\"},\"status\":403}",
           "security_exception: no permissions for [cluster:monitor/health]");
    reason("{\"error\":{\"type\":\"master_not_discovered_exception\"},\"status\":503}",
           "master_not_discovered_exception");
    reason("{\"error\":\"alias [magento2_product_1] missing\",\"status\":404}",
           "alias [magento2_product_1] missing");
    reason("{\"message\":\"The security token included in the request is invalid.\"}",
           "The security token included in the request is invalid.");
    reason("{\"Message\":\"User: anonymous is not authorized\"}",
           "User: anonymous is not authorized");
    reason("Unauthorized", "Unauthorized");
    reason("\r\n  \n<html><head><title>502 Bad Gateway</title></head>\n</html>",
           "<html><head><title>502 Bad Gateway</title></head>");
    reason("", "");
    reason("{\"status\":500}", "{\"status\":500}"); /* no reason in it: its first line */
    /* A reason longer than the buffer is cut, never overflowed. */
    char out[8];
    mh_os_error_reason("{\"message\":\"0123456789abcdef\"}", 30, out, sizeof out);
    assert_string_equal(out, "0123456");
}

/* ---- AWS credentials ---- */

static const char CREDENTIALS[] = "# a comment\n"
                                  "[default]\n"
                                  "aws_access_key_id = AKIADEFAULT0000000\n"
                                  "aws_secret_access_key = default/secret+key\n"
                                  "\n"
                                  "; another comment\n"
                                  "[profile search]\r\n"
                                  "  aws_access_key_id=ASIASEARCH00000000  \r\n"
                                  "aws_secret_access_key =search/secret\r\n"
                                  "aws_session_token = FwoGZXIvYXdzE//token==\r\n"
                                  "region = eu-west-1\r\n";

static int creds(const char *text, const char *profile, struct mh_aws_credentials *c, char *err)
{
    return mh_aws_credentials_parse(text, strlen(text), profile, c, err, 256);
}

static void test_credentials_profiles(void **state)
{
    (void)state;
    struct mh_aws_credentials c, d;
    char err[256];
    assert_int_equal(creds(CREDENTIALS, "default", &c, err), 0);
    assert_string_equal(c.access_key_id, "AKIADEFAULT0000000");
    assert_string_equal(c.secret_access_key, "default/secret+key");
    assert_string_equal(c.session_token, "");
    assert_int_equal(creds(CREDENTIALS, "search", &d, err), 0);
    assert_string_equal(d.access_key_id, "ASIASEARCH00000000");
    assert_string_equal(d.secret_access_key, "search/secret");
    assert_string_equal(d.session_token, "FwoGZXIvYXdzE//token==");
    assert_false(mh_aws_credentials_equal(&c, &d));
    mh_aws_credentials_wipe(&d);
    assert_string_equal(d.secret_access_key, "");
}

static void test_credentials_errors_never_show_values(void **state)
{
    (void)state;
    static const struct {
        const char *text, *profile, *says;
    } cases[] = {
        {CREDENTIALS, "nope", "profile nope: the profile is missing"},
        {"[a]\naws_secret_access_key = s3cr3tvalue\n", "a", "aws_access_key_id is missing"},
        {"[a]\naws_access_key_id = AKIAX\n", "a", "aws_secret_access_key is missing"},
        {"[a]\naws_access_key_id = AKIAX\naws_secret_access_key = s3cr3t value\n", "a",
         "aws_secret_access_key is empty or has spaces"},
        {"[a]\naws_access_key_id = AKIAX\naws_secret_access_key = s3cr3tvalue\n"
         "aws_session_token = \n",
         "a", "aws_session_token is empty"},
        {"[b]\naws_access_key_id = AKIAX\naws_secret_access_key = s3cr3tvalue\n", "a",
         "the profile is missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mh_aws_credentials c;
        char err[256] = "";
        assert_int_equal(creds(cases[i].text, cases[i].profile, &c, err), -1);
        if (!strstr(err, cases[i].says))
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, cases[i].says);
        assert_null(strstr(err, "s3cr3t"));
        assert_null(strstr(err, "AKIA"));
        assert_string_equal(c.access_key_id, ""); /* nothing half-read is left behind */
    }
}

static void test_credentials_too_long_token(void **state)
{
    (void)state;
    size_t n = MH_AWS_TOKEN_MAX + 100;
    char *text = malloc(n + 200);
    assert_non_null(text);
    int k = snprintf(text, 200,
                     "[a]\naws_access_key_id = AKIAX\naws_secret_access_key = s\n"
                     "aws_session_token = ");
    memset(text + k, 'T', n);
    text[k + (int)n] = '\0';
    struct mh_aws_credentials c;
    char err[256];
    assert_int_equal(creds(text, "a", &c, err), -1);
    assert_non_null(strstr(err, "aws_session_token is too long"));
    free(text);
}

static void test_credentials_from_env(void **state)
{
    (void)state;
    struct mh_aws_credentials c;
    char err[256];
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    assert_int_equal(mh_aws_credentials_from_env(&c, err, sizeof err), -1);
    assert_string_equal(err, "AWS_ACCESS_KEY_ID is not set");
    setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
    assert_int_equal(mh_aws_credentials_from_env(&c, err, sizeof err), 0);
    assert_string_equal(c.secret_access_key, "env-secret");
    assert_string_equal(c.session_token, "");
    setenv("AWS_SESSION_TOKEN", "bad\ntoken", 1); /* would split the signed header */
    assert_int_equal(mh_aws_credentials_from_env(&c, err, sizeof err), -1);
    assert_null(strstr(err, "bad"));
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_documented_green_body),
        cmocka_unit_test(test_colours_and_timed_out),
        cmocka_unit_test(test_bad_bodies_are_refused_with_a_reason),
        cmocka_unit_test(test_parse_reads_only_len_bytes),
        cmocka_unit_test(test_long_cluster_name_is_cut),
        cmocka_unit_test(test_error_reasons),
        cmocka_unit_test(test_credentials_profiles),
        cmocka_unit_test(test_credentials_errors_never_show_values),
        cmocka_unit_test(test_credentials_too_long_token),
        cmocka_unit_test(test_credentials_from_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
