/* test_envphp.c - unit tests for the env.php reader (mh_envphp.c), the derivation of checks from
 * it (mh_magento.c) and how the loader merges those with [check.NAME] sections (mh_config.c):
 * every literal form Magento writes, every refusal with its line and column, the bounds, and the
 * mapping table of the issue (db host forms, replica, session handlers, caches, L2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mh_check.h"
#include "mh_config.h"
#include "mh_envphp.h"
#include "mh_magento.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char err[512];

static struct mh_php_node *parse(const char *text)
{
    return mh_envphp_parse(text, strlen(text), "env.php", err, sizeof err);
}

static struct mh_php_node *parse_ok(const char *text)
{
    struct mh_php_node *n = parse(text);
    if (!n)
        print_error("unexpected error: %s\n", err);
    assert_non_null(n);
    return n;
}

/* Must fail with an error starting with `prefix` and containing `word`. */
static void parse_err(const char *text, const char *prefix, const char *word)
{
    struct mh_php_node *n = parse(text);
    if (n)
        mh_php_free(n);
    assert_null(n);
    if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, word))
        print_error("error \"%s\" lacks \"%s\"...\"%s\"\n", err, prefix, word);
    assert_true(strncmp(err, prefix, strlen(prefix)) == 0);
    assert_non_null(strstr(err, word));
}

static const char *str_at(const struct mh_php_node *root, const char *path)
{
    const struct mh_php_node *n = mh_php_get(root, path);
    assert_non_null(n);
    assert_int_equal(n->type, MH_PHP_STRING);
    return n->s;
}

static void test_literals(void **state)
{
    (void)state;
    struct mh_php_node *r = parse_ok("<?php\n"
                                     "// comment\n"
                                     "# another\n"
                                     "/* block\n comment */\n"
                                     "return array(\n"
                                     "  'a' => 'it\\'s \\\\ \\n',\n"
                                     "  \"b\" => \"tab\\there \\x41\\101\\u{e9} \\$x \\q\",\n"
                                     "  'i' => -42, 'h' => 0x1F, 'o' => 0755, 'bin' => 0b101,\n"
                                     "  'f' => 2.5, 'e' => 1e3, 'u' => 1_000,\n"
                                     "  'T' => TRUE, 'F' => false, 'N' => Null,\n"
                                     "  'list' => ['x', 'y', 5 => 'z', 'w',],\n"
                                     "  7 => 'seven', '8' => 'eight',\n"
                                     "  'nested' => [[[]]],\n"
                                     ");\n");
    assert_string_equal(str_at(r, "a"), "it's \\ \\n");
    assert_string_equal(str_at(r, "b"), "tab\there AA\xc3\xa9 $x \\q");
    assert_int_equal(mh_php_get(r, "i")->i, -42);
    assert_int_equal(mh_php_get(r, "h")->i, 31);
    assert_int_equal(mh_php_get(r, "o")->i, 493);
    assert_int_equal(mh_php_get(r, "bin")->i, 5);
    assert_int_equal(mh_php_get(r, "u")->i, 1000);
    assert_int_equal(mh_php_get(r, "f")->type, MH_PHP_FLOAT);
    assert_true(mh_php_get(r, "e")->f == 1000.0);
    assert_true(mh_php_get(r, "T")->b);
    assert_false(mh_php_get(r, "F")->b);
    assert_int_equal(mh_php_get(r, "N")->type, MH_PHP_NULL);
    assert_string_equal(str_at(r, "list.0"), "x");
    assert_string_equal(str_at(r, "list.1"), "y");
    assert_string_equal(str_at(r, "list.5"), "z");
    assert_string_equal(str_at(r, "list.6"), "w");
    assert_string_equal(str_at(r, "7"), "seven");
    assert_string_equal(str_at(r, "8"), "eight");
    assert_int_equal(mh_php_get(r, "a")->line, 7);
    assert_int_equal(mh_php_get(r, "list.6")->line, 12);
    char buf[32];
    assert_string_equal(mh_php_scalar(mh_php_get(r, "f"), buf, sizeof buf), "2.5");
    assert_string_equal(mh_php_scalar(mh_php_get(r, "T"), buf, sizeof buf), "1");
    mh_php_free(r);
    /* A closing tag, a BOM, a last key given twice (the last wins). */
    r = parse_ok("\xEF\xBB\xBF<?php return ['k' => 1, 'k' => 2]; ?>\n");
    assert_int_equal(mh_php_get(r, "k")->i, 2);
    mh_php_free(r);
}

static void test_expressions_refused(void **state)
{
    (void)state;
    parse_err("<?php\nreturn [\n  'db' => [\n    'host' => getenv('DB_HOST'),\n", "env.php:4:15: ",
              "a PHP expression (getenv) is not a literal; use env_php_reader = php");
    parse_err("<?php return ['a' => 'x' . 'y'];", "env.php:1:26: ", "(concatenation)");
    parse_err("<?php return ['a' => \"x$y\"];", "env.php:1:24: ", "variable in a string");
    parse_err("<?php return ['a' => PHP_EOL];", "env.php:1:22: ", "(a constant or bare word)");
    parse_err("<?php return ['password' => Unquoted1];", "env.php:1:29: ", "bare word");
    assert_null(strstr(err, "Unquoted1"));
    parse_err("<?php return ['a' => $x];", "env.php:1:22: ", "a variable");
    parse_err("<?php return ['a' => 1 + 2];", "env.php:1:24: ", "operator");
    parse_err("<?php return ['a' => \\Foo::BAR];", "env.php:1:22: ", "not a literal");
    parse_err("<?php $x = 1; return [];", "env.php:1:7: ", "not a literal");
    parse_err("<?php return [] ;  echo 1;", "env.php:1:20: ", "unexpected text");
    parse_err("<?php return <<<EOT\nx\nEOT;", "env.php:1:14: ", "heredoc");
}

static void test_truncated_and_garbage(void **state)
{
    (void)state;
    parse_err("<?php return ['a' => ['b' => 'c'", "env.php:1:33: ", "truncated");
    parse_err("<?php return ['a' => 'unterminated", "env.php:1:22: ", "unterminated string");
    parse_err("<?php return ['a' => 1]", "env.php:1:24: ", "missing ';'");
    parse_err("", "env.php:1:1: ", "<?php");
    parse_err("<?php /* open", "env.php:1:7: ", "unterminated /* comment");
    parse_err("<?php return ['a' => 'caf\xe9'];", "env.php:1:22: ", "not valid UTF-8");
    parse_err("<?php return ['a' => \"\\0\"];", "env.php:1:22: ", "NUL byte");
    parse_err("<?php return 'x';", "env.php:1:17: ", "must return an array");
    parse_err("<?php return ['a' => 12ab];", "env.php:1:22: ", "invalid number");
}

static void test_bounds(void **state)
{
    (void)state;
    /* Nesting: 32 levels are fine, 33 are not. */
    char buf[512];
    int n = snprintf(buf, sizeof buf, "<?php return ");
    for (int i = 0; i < 32; i++)
        buf[n++] = '[';
    for (int i = 0; i < 32; i++)
        buf[n++] = ']';
    strcpy(buf + n, ";");
    mh_php_free(parse_ok(buf));
    n = snprintf(buf, sizeof buf, "<?php return ");
    for (int i = 0; i < 40; i++)
        buf[n++] = '[';
    buf[n] = '\0';
    parse_err(buf, "env.php:1:", "nested deeper than 32");
    /* A string over 64 KiB, a file over 1 MiB. */
    size_t big = MH_ENVPHP_MAX_STRING + 100;
    char *s = malloc(big + 64);
    int k = snprintf(s, 64, "<?php return ['a' => '");
    memset(s + k, 'x', big);
    strcpy(s + k + big, "'];");
    parse_err(s, "env.php:1:", "string longer than");
    free(s);
    size_t huge = MH_ENVPHP_MAX_FILE + 1;
    s = calloc(1, huge + 1);
    memset(s, ' ', huge);
    assert_null(mh_envphp_parse(s, huge, "env.php", err, sizeof err));
    assert_non_null(strstr(err, "larger than"));
    free(s);
    /* Many values: the item cap. */
    size_t many = (MH_ENVPHP_MAX_ITEMS + 10) * 2 + 64;
    s = malloc(many);
    k = snprintf(s, 64, "<?php return [");
    for (int i = 0; i < MH_ENVPHP_MAX_ITEMS + 5; i++)
        s[k++] = '1', s[k++] = ',';
    strcpy(s + k, "];");
    parse_err(s, "env.php:1:", "more than");
    free(s);
}

static void test_json(void **state)
{
    (void)state;
    const char *j =
        "{\"db\":{\"connection\":{\"default\":{\"host\":\"h:3307\",\"x\":[1,2.5,true,null]}}}}";
    struct mh_php_node *r = mh_envphp_parse_json(j, strlen(j), "env.php", err, sizeof err);
    assert_non_null(r);
    assert_string_equal(str_at(r, "db.connection.default.host"), "h:3307");
    assert_int_equal(mh_php_get(r, "db.connection.default.x.1")->type, MH_PHP_FLOAT);
    mh_php_free(r);
    assert_null(mh_envphp_parse_json("false", 5, "env.php", err, sizeof err));
    assert_null(mh_envphp_parse_json("{", 1, "env.php", err, sizeof err));
}

/* ---- derivation ---- */

static struct mh_magento derived;

static const struct mh_derived_check *derive_ok(const char *text, bool magento_creds)
{
    struct mh_php_node *r = parse_ok(text);
    struct mh_magento_opts o = {.credentials_magento = magento_creds,
                                .mysql_socket = "/run/mysqld/mysqld.sock"};
    int rc = mh_magento_derive(r, "env.php", &o, &derived, err, sizeof err);
    mh_php_free(r);
    if (rc < 0)
        print_error("unexpected error: %s\n", err);
    assert_int_equal(rc, 0);
    return derived.checks;
}

static void derive_err(const char *text, const char *word)
{
    struct mh_php_node *r = parse_ok(text);
    struct mh_magento_opts o = {.mysql_socket = "/run/mysqld/mysqld.sock"};
    int rc = mh_magento_derive(r, "env.php", &o, &derived, err, sizeof err);
    mh_php_free(r);
    assert_int_equal(rc, -1);
    if (!strstr(err, word))
        print_error("error \"%s\" lacks \"%s\"\n", err, word);
    assert_non_null(strstr(err, word));
}

static const struct mh_derived_check *find(const char *name)
{
    for (int i = 0; i < derived.n_checks; i++)
        if (strcmp(derived.checks[i].name, name) == 0)
            return &derived.checks[i];
    return NULL;
}

static const char *kv(const char *check, const char *key)
{
    const struct mh_derived_check *c = find(check);
    assert_non_null(c);
    for (int i = 0; i < c->n_kv; i++)
        if (strcmp(c->kv[i].key, key) == 0)
            return c->kv[i].value;
    return NULL;
}

#define DB(host)                                                                                   \
    "<?php return ['db' => ['connection' => ['default' => ['host' => '" host "', "                 \
    "'dbname' => 'mage', 'username' => 'mu', 'password' => 'pw']]]];"

static void test_db_forms(void **state)
{
    (void)state;
    derive_ok(DB("db.example"), false);
    assert_string_equal(kv("db", "host"), "db.example");
    assert_null(kv("db", "port"));
    assert_null(kv("db", "user")); /* least privilege: not Magento's user */
    assert_null(kv("db", "password"));
    derive_ok(DB("10.0.0.5:3307"), false);
    assert_string_equal(kv("db", "host"), "10.0.0.5");
    assert_string_equal(kv("db", "port"), "3307");
    derive_ok(DB("/var/run/mysqld/mysqld.sock"), false);
    assert_string_equal(kv("db", "socket"), "/var/run/mysqld/mysqld.sock");
    derive_ok(DB("localhost"), false);
    assert_string_equal(kv("db", "socket"), "/run/mysqld/mysqld.sock");
    assert_null(kv("db", "host"));
    derive_ok(DB("h"), true);
    assert_string_equal(kv("db", "user"), "mu");
    assert_string_equal(kv("db", "database"), "mage");
    const struct mh_derived_check *c = find("db");
    bool secret = false;
    for (int i = 0; i < c->n_kv; i++)
        if (strcmp(c->kv[i].key, "password") == 0)
            secret = c->kv[i].secret;
    assert_true(secret);
    /* The replica: a second mysql check that does not write. */
    derive_ok("<?php return ['db' => ['connection' => ['default' => ['host' => 'w']],\n"
              "'slave_connection' => ['default' => ['host' => 'r:3308']]]];",
              false);
    assert_string_equal(kv("db_replica", "host"), "r");
    assert_string_equal(kv("db_replica", "write"), "no");
    assert_string_equal(find("db_replica")->type, "mysql");
}

static void test_redis_forms(void **state)
{
    (void)state;
    derive_ok("<?php return ['MAGE_MODE' => 'production', 'session' => ['save' => 'redis',\n"
              "'redis' => ['host' => '/run/redis.sock', 'port' => '0', 'password' => 'pw',\n"
              "'database' => '3', 'timeout' => '2.5']],\n"
              "'cache' => ['frontend' => ['default' => ['backend' =>\n"
              "'Magento\\\\Framework\\\\Cache\\\\Backend\\\\Redis', 'backend_options' => [\n"
              "'server' => 'tls://cache.example', 'port' => '6380']],\n"
              "'page_cache' => ['backend' => 'Cm_Cache_Backend_Redis', 'backend_options' => [\n"
              "'server' => 'tcp://fpc', 'database' => '']]]]];",
              false);
    assert_string_equal(kv("redis_session", "host"), "/run/redis.sock");
    assert_string_equal(kv("redis_session", "database"), "3");
    assert_string_equal(kv("redis_session", "role"), "session");
    assert_string_equal(kv("redis_session", "connect_timeout"), "2500ms");
    assert_string_equal(kv("redis_cache", "host"), "cache.example");
    assert_string_equal(kv("redis_cache", "tls"), "yes");
    assert_string_equal(kv("redis_cache", "database"), "0");
    assert_string_equal(kv("redis_page_cache", "host"), "fpc");
    assert_string_equal(kv("redis_page_cache", "database"), "1");
    assert_string_equal(kv("magento", "mage_mode"), "production");
    /* Defaults: session database 2. A files session handler is a fact, not a check. */
    derive_ok("<?php return ['session' => ['save' => 'redis', 'redis' => []]];", false);
    assert_string_equal(kv("redis_session", "database"), "2");
    assert_string_equal(kv("redis_session", "host"), "127.0.0.1");
    derive_ok("<?php return ['session' => ['save' => 'files']];", false);
    assert_null(find("redis_session"));
    assert_non_null(strstr(kv("magento", "session_save"), "files"));
    derive_ok("<?php return ['session' => ['save' => 'memcached']];", false);
    assert_non_null(strstr(kv("magento", "session_save"), "memcached"));
    /* L2: the remote backend is the dependency. */
    derive_ok(
        "<?php return ['cache' => ['frontend' => ['default' => [\n"
        "'backend' => '\\\\Magento\\\\Framework\\\\Cache\\\\Backend\\\\RemoteSynchronizedCache',\n"
        "'backend_options' => ['remote_backend' => '\\\\Magento\\\\Framework\\\\Cache\\\\Backend"
        "\\\\Redis',\n'remote_backend_options' => ['server' => 'l2', 'port' => '6390',\n"
        "'database' => '5', 'password' => ''], 'local_backend' => 'Cm_Cache_Backend_File',\n"
        "'local_backend_options' => ['cache_dir' => '/dev/shm/']]]]]];",
        false);
    assert_string_equal(kv("redis_cache", "host"), "l2");
    assert_string_equal(kv("redis_cache", "port"), "6390");
    assert_string_equal(kv("redis_cache", "database"), "5");
    assert_null(kv("redis_cache", "password"));
    /* A file cache is a fact. */
    derive_ok("<?php return ['cache' => ['frontend' => ['default' => ['id_prefix' => 'x']]]];",
              false);
    assert_null(find("redis_cache"));
    assert_non_null(strstr(kv("magento", "cache_default"), "file"));
}

static void test_derive_errors(void **state)
{
    (void)state;
    derive_err("<?php return ['db' => ['connection' => ['default' => ['host' => ['x']]]]];",
               "env.php:1: db.connection.default: host: expected a string or number");
    derive_err("<?php return ['db' => ['connection' => 'x']];", "db.connection: expected an array");
    derive_err("<?php return ['session' => ['save' => 'redis']];", "no session.redis");
    derive_err("<?php return ['session' => ['save' => 'redis', 'redis' => ['timeout' => 'x']]];",
               "timeout: expected seconds");
    derive_err("<?php return ['db' => ['connection' => ['default' => ['dbname' => 'x']]]];",
               "no host");
}

/* ---- the loader: merging with [check.NAME] ---- */

static char dir[64];
static char conf_path[128], env_path[128];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/mh-test-envphp-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char p[128];
    snprintf(p, sizeof p, "%s/app", dir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/app/etc", dir);
    mkdir(p, 0700);
    snprintf(conf_path, sizeof conf_path, "%s/h.conf", dir);
    snprintf(env_path, sizeof env_path, "%s/app/etc/env.php", dir);
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    char p[128];
    unlink(conf_path);
    unlink(env_path);
    snprintf(p, sizeof p, "%s/pw", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/app/etc", dir);
    rmdir(p);
    snprintf(p, sizeof p, "%s/app", dir);
    rmdir(p);
    rmdir(dir);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Loads conf below [server] magento_root = dir. A [magento] section (which turns env_php = auto
 * on) is added unless conf has one, or legacy asks for a configuration from before env.php. */
static struct mh_config *load_as(const char *conf, const char *env, bool record, bool legacy)
{
    char text[2048];
    snprintf(text, sizeof text, "[server]\nmagento_root = %s\n%s%s", dir,
             legacy || strstr(conf, "[magento]") ? "" : "[magento]\n", conf);
    write_file(conf_path, text);
    if (env)
        write_file(env_path, env);
    else
        unlink(env_path);
    struct mh_load_opts o = {.record = record};
    return mh_config_load_with(conf_path, &o, err, sizeof err);
}

static struct mh_config *load(const char *conf, const char *env, bool record)
{
    return load_as(conf, env, record, false);
}

static const struct mh_check *check_named(const struct mh_config *cfg, const char *name)
{
    for (int i = 0; i < cfg->n_checks; i++)
        if (strcmp(cfg->checks[i]->name, name) == 0)
            return cfg->checks[i];
    return NULL;
}

#define ENV_ALL                                                                                    \
    "<?php\nreturn [\n'db' => ['connection' => ['default' => ['host' => 'db:3307',\n"              \
    "'username' => 'magento', 'password' => 'TOPSECRET-db']]],\n"                                  \
    "'session' => ['save' => 'redis', 'redis' => ['host' => '127.0.0.1', 'port' => '6390',\n"      \
    "'password' => 'TOPSECRET-redis']]];\n"

static void test_merge(void **state)
{
    (void)state;
    /* No [magento] section (a configuration from before env.php support, magento_root in
     * [server]): env.php is not followed, so an upgrade loads it exactly as before. */
    struct mh_config *cfg = load_as("[check.d]\ntype = drain\n", ENV_ALL, false, true);
    assert_non_null(cfg);
    assert_int_equal(cfg->n_checks, 1);
    assert_null(check_named(cfg, "db"));
    mh_config_free(cfg);
    /* Without a database user for the check: a clear error naming the ways to give one. */
    cfg = load("[magento]\n", ENV_ALL, false);
    assert_null(cfg);
    assert_non_null(strstr(err, "[check.db]"));
    assert_non_null(strstr(err, "db_user"));
    assert_null(strstr(err, "TOPSECRET"));
    /* [magento] db_user: derived checks; --print-config text shows origins, never a secret. */
    cfg = load("[magento]\ndb_user = healthd\n", ENV_ALL, true);
    if (!cfg)
        print_error("%s\n", err);
    assert_non_null(cfg);
    assert_true(cfg->magento.env_php_used);
    assert_non_null(check_named(cfg, "db"));
    assert_non_null(check_named(cfg, "redis_session"));
    assert_non_null(check_named(cfg, "magento"));
    assert_null(strstr(cfg->effective, "TOPSECRET"));
    assert_non_null(strstr(cfg->effective, "password = (secret from "));
    assert_non_null(strstr(cfg->effective, "host = db  # "));
    assert_non_null(strstr(cfg->effective, "env.php:3\n"));
    assert_non_null(strstr(cfg->effective, "user = healthd  # "));
    mh_config_free(cfg);
    /* An override: key by key, the section wins; enabled = no drops a derived check. */
    cfg = load("[magento]\ndb_user = healthd\n[check.redis_session]\nport = 6391\ninterval = 5s\n"
               "[check.db]\nenabled = no\n",
               ENV_ALL, true);
    assert_non_null(cfg);
    assert_null(check_named(cfg, "db"));
    assert_int_equal(check_named(cfg, "redis_session")->interval, 5000);
    assert_non_null(strstr(cfg->effective, "port = 6391  # "));
    mh_config_free(cfg);
    /* An override of a check env.php no longer implies (sessions moved to files) is no error. */
    cfg = load("[check.redis_session]\ninterval = 5s\n[check.d]\ntype = drain\n",
               "<?php return ['session' => ['save' => 'files']];", false);
    if (!cfg)
        print_error("%s\n", err);
    assert_non_null(cfg);
    assert_null(check_named(cfg, "redis_session"));
    mh_config_free(cfg);
    /* type may not change. */
    cfg = load("[magento]\ndb_user = u\n[check.db]\ntype = redis\n", ENV_ALL, false);
    assert_null(cfg);
    assert_non_null(strstr(err, "may not change"));
    /* credentials = magento: Magento's user and password. */
    cfg = load("[magento]\ncredentials = magento\n", ENV_ALL, true);
    assert_non_null(cfg);
    assert_non_null(strstr(cfg->effective, "user = magento  # "));
    assert_null(strstr(cfg->effective, "TOPSECRET"));
    mh_config_free(cfg);
    /* [magento] database keys are known keys even with no database in env.php. */
    cfg = load("[magento]\ndb_password_env = X\ndb_user = u\n", "<?php return [];", false);
    if (!cfg)
        print_error("%s\n", err);
    assert_non_null(cfg);
    mh_config_free(cfg);
    assert_null(
        load("[magento]\ndb_password_env = X\ndb_password_file = /x\n", "<?php return [];", false));
    assert_non_null(strstr(err, "not both"));
    /* auto without an env.php: nothing derived (a bare node); an explicit path must exist. */
    cfg = load("[check.d]\ntype = drain\n", NULL, false);
    assert_non_null(cfg);
    assert_false(cfg->magento.env_php_used);
    assert_int_equal(cfg->n_checks, 1);
    mh_config_free(cfg);
    char text[256];
    snprintf(text, sizeof text, "[magento]\nenv_php = %s\n[check.d]\ntype = drain\n", env_path);
    assert_null(load(text, NULL, false));
    assert_non_null(strstr(err, "cannot open"));
    /* A parse error names env.php, line and column. */
    assert_null(load("[magento]\ndb_user = u\n",
                     "<?php\nreturn ['db' => ['connection' => ['default' => ['host' => "
                     "getenv('H')]]]];",
                     false));
    assert_non_null(strstr(err, "env.php:2:"));
    assert_non_null(strstr(err, "(getenv)"));
    /* A wrong type at a key. */
    assert_null(
        load("", "<?php return ['session' => ['save' => 'redis', 'redis' => 'x']];", false));
    assert_non_null(strstr(err, "session.redis: expected an array"));
    /* A derived value a check type refuses: the error names env.php's line. */
    assert_null(load("",
                     "<?php return ['session' => ['save' => 'redis',\n'redis' => "
                     "['port' => 'abc']]];",
                     false));
    assert_non_null(strstr(err, "env.php:2: [check.redis_session] port:"));
}

static void test_php_reader(void **state)
{
    (void)state;
    if (access("/usr/bin/php", X_OK) != 0)
        skip();
    setenv("MH_TEST_REDIS_HOST", "10.1.2.3", 1);
    struct mh_config *cfg = load("[magento]\nenv_php_reader = php\n",
                                 "<?php\nreturn ['session' => ['save' => 'redis', 'redis' => "
                                 "['host' => getenv('MH_TEST_REDIS_HOST'), 'port' => 6000 + 1]]];",
                                 true);
    if (!cfg)
        print_error("%s\n", err);
    assert_non_null(cfg);
    assert_non_null(strstr(cfg->effective, "host = 10.1.2.3"));
    assert_non_null(strstr(cfg->effective, "port = 6001"));
    mh_config_free(cfg);
    /* A PHP error is an error, and so is a file that returns no array. */
    assert_null(load("[magento]\nenv_php_reader = php\n", "<?php return [;", false));
    assert_non_null(strstr(err, "env_php_reader = php"));
    assert_null(load("[magento]\nenv_php_reader = php\n", "<?php return 5;", false));
    assert_non_null(strstr(err, "does not return an array"));
    /* The timeout kills a PHP that never finishes. */
    assert_null(load("[magento]\nenv_php_reader = php\nphp_timeout = 300ms\n",
                     "<?php while (true) {} ", false));
    assert_non_null(strstr(err, "timed out"));
    unsetenv("MH_TEST_REDIS_HOST");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_expressions_refused),
        cmocka_unit_test(test_truncated_and_garbage),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_db_forms),
        cmocka_unit_test(test_redis_forms),
        cmocka_unit_test(test_derive_errors),
        cmocka_unit_test_setup_teardown(test_merge, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_php_reader, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
