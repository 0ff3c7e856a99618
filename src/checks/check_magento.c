/* check_magento.c - type magento: how Magento's env.php was read, for the detailed view.
 *
 * The loader derives one [check.magento] section from env.php (mh_magento.c). Its keys are
 * facts, not settings: where env.php is, MAGE_MODE, a session handler or cache backend that is
 * not checked (files, db, memcached, a file cache), what queue and search engine Magento uses.
 * Its one measurement, `env_php`, affects nothing by default: it passes while the running
 * configuration matches env.php and warns with the reason while a rewritten env.php cannot be
 * used (the last good configuration keeps running). It does no I/O: the main thread reads
 * env.php and publishes the status through mh_magento_status_set(). */
#include "mh_check.h"
#include "mh_magento.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct magento_impl {
    struct mh_fact facts[MH_FACTS_MAX];
    int n_facts;
};

static const char *const fact_keys[] = {"env_php",       "mage_mode",        "session_save",
                                        "cache_default", "cache_page_cache", "amqp",
                                        "search",        "db_name"};

static void magento_run(struct mh_check *check, const struct timespec *deadline, struct mh_run *out)
{
    (void)deadline;
    struct magento_impl *m = check->impl;
    char err[512];
    mh_magento_status_get(err, sizeof err);
    if (err[0])
        mh_observe(out, 0, MH_WARN, "%s; the last good configuration keeps running", err);
    else
        mh_observe(out, 0, MH_PASS, "%s", "");
    for (int i = 0; i < m->n_facts; i++)
        mh_run_fact(out, m->facts[i].key, "%s", m->facts[i].value);
}

static void magento_destroy(struct mh_check *check)
{
    free(check->impl);
    check->impl = NULL;
}

static int magento_create(struct mh_check *check, struct mh_section *sec)
{
    struct magento_impl *m = calloc(1, sizeof *m);
    if (!m)
        return mh_section_error(sec, "type", "out of memory");
    check->impl = m;
    for (size_t i = 0; i < sizeof fact_keys / sizeof fact_keys[0]; i++) {
        const char *v = mh_section_get(sec, fact_keys[i]);
        if (!v || m->n_facts == MH_FACTS_MAX)
            continue;
        snprintf(m->facts[m->n_facts].key, MH_FACT_KEY_MAX, "%s", fact_keys[i]);
        snprintf(m->facts[m->n_facts].value, MH_FACT_VALUE_MAX, "%s", v);
        m->n_facts++;
    }
    if (mh_check_declare(check, "env_php", check->affects) < 0)
        return mh_section_error(sec, "type", "too many measurements");
    return 0;
}

const struct mh_check_type mh_check_magento = {
    .name = "magento",
    .component_type = "component",
    .default_affects = MH_AFFECTS_NONE,
    .create = magento_create,
    .run = magento_run,
    .destroy = magento_destroy,
};
