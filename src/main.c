/* main.c - magento-healthd: command line, signals, the main loop, reload and shutdown.
 *
 * The main thread owns the lifecycle. All signals are blocked in every thread and taken here with
 * sigtimedwait(), so reload and shutdown run as ordinary code, not in a signal handler. Every
 * tick the loop marks stale results, re-renders the public bodies when a status changed, and talks
 * to systemd (READY, STATUS, and WATCHDOG when systemd asks for it) through mh_notify, which
 * never blocks. */
#include "mh_check.h"
#include "mh_config.h"
#include "mh_http.h"
#include "mh_log.h"
#include "mh_magento.h"
#include "mh_notify.h"
#include "mh_registry.h"
#include "mh_render.h"
#include "mh_status_cmd.h"
#include "mh_worker.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/magento-healthd/magento-healthd.conf"
#define TICK_MS        100
/* At exit, after shutdown_delay: how long a run in progress may take to finish, and how long log
 * lines and STOPPING=1 may take to get out. Together the exit bound README names (2 s). */
#define EXIT_WORKERS_MS 500
#define LOG_FLUSH_MS    250
#define NOTIFY_FLUSH_MS 1000
/* READY=1 goes out when every check has a first result, and at the latest this long after the
 * longest timeout plus the warm-up cap (MH_WARMUP_MAX_MS): a check still without a result then
 * shows as "starting", and as failed once its max_age has passed. */
#define READY_SLACK_MS 1000

/* How often the main loop compares env.php's identity (inode, size, mtime) with the one it last
 * read: a rewritten env.php is picked up within this bound (plus the reload itself). */
#define ENVPHP_POLL_MS 1000

enum mode { MODE_RUN, MODE_CHECK, MODE_TEST_CONFIG, MODE_PRINT_CONFIG };

/* The transitions of every check since start, across reloads: one per process, never freed
 * (a worker stuck in a run at exit may still record into it). */
static struct mh_history *history;
/* --json: --check prints JSON even on a terminal. */
static bool json_output;

static void usage(FILE *to)
{
    fprintf(to,
            "Usage: magento-healthd [-c FILE] [--check [--json] | --test-config | --print-config]\n"
            "       magento-healthd status [-c FILE] [--json] [--timeout DURATION]\n"
            "Health checks for a Magento 2 web node, served to load balancers and Route 53.\n"
            "\n"
            "  -c, --config FILE  configuration file (default " DEFAULT_CONFIG ")\n"
            "      --check        run every check once, print the report (a table on a\n"
            "                     terminal, else JSON) and exit 0 (pass), 1 (warn) or 2 (fail)\n"
            "      --json         with --check: JSON, also on a terminal\n"
            "  -t, --test-config  validate the configuration and exit\n"
            "      --print-config print the effective configuration (with the checks derived\n"
            "                     from Magento's env.php), each value with its origin\n"
            "  -V, --version      print the version and exit\n"
            "  -h, --help         print this help and exit\n"
            "\n"
            "  status             ask the running daemon for its on-call view (see --help there)\n"
            "\n"
            "Endpoints: /healthcheck/live, /healthcheck (node), /healthcheck/region.\n"
            "See magento-healthd(8) and magento-healthd.conf(5).\n");
}

static void log_transition(const struct mh_check *check, int meas, enum mh_status from,
                           enum mh_status to, bool first, const char *output, void *ctx)
{
    (void)ctx;
    enum mh_log_level level = to == MH_FAIL ? MH_LOG_WARNING : MH_LOG_NOTICE;
    mh_log(level, "check %s:%s: %s -> %s: %s", check->name, check->meas[meas].name,
           first ? "starting" : mh_status_name(from), mh_status_name(to),
           output[0] ? output : "ok");
}

static void raise_fd_limit(void)
{
    /* Each held-open probe connection costs a descriptor; the default soft limit of 1024 would
     * cap us below connection_limit. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static struct mh_config *load_or_report(const char *path)
{
    char err[MH_CONFIG_ERROR_MAX];
    struct mh_config *cfg = mh_config_load(path, err, sizeof err);
    if (!cfg)
        fprintf(stderr, "magento-healthd: %s\n", err);
    return cfg;
}

/* --print-config: every key of [server], [magento] and each check, with its origin. Secrets
 * appear only as "(secret from WHERE)". */
static int print_config(const char *path)
{
    char err[MH_CONFIG_ERROR_MAX];
    struct mh_load_opts opts = {.record = true};
    struct mh_config *cfg = mh_config_load_with(path, &opts, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "magento-healthd: %s\n", err);
        return 1;
    }
    const struct mh_magento_conf *mc = &cfg->magento;
    printf("# effective configuration of %s: %d checks\n", path, cfg->n_checks);
    if (!mc->env_php[0])
        printf("# env.php: not used\n");
    else
        printf("# env.php: %s (%s, reader %s)\n", mc->env_php,
               mc->env_php_used ? "read" : "not there yet; watched",
               mc->reader == MH_ENVPHP_PHP ? "php" : "native");
    fputs(cfg->effective ? cfg->effective : "", stdout);
    mh_config_free(cfg);
    return fflush(stdout) == 0 ? 0 : 1;
}

static mh_ms longest_timeout(const struct mh_config *cfg)
{
    mh_ms longest = 0;
    for (int i = 0; i < cfg->n_checks; i++)
        if (cfg->checks[i]->timeout > longest)
            longest = cfg->checks[i]->timeout;
    return longest;
}

/* Stops the workers, lets a run in progress finish for up to `ms`, and frees everything if they
 * all did, so that a clean exit is leak-free. A worker still in a run keeps its reference; the
 * process exits anyway. NULL is fine. */
static void finish_registry(struct mh_registry *reg, mh_ms ms)
{
    if (!reg)
        return;
    mh_registry_stop(reg);
    if (mh_registry_wait_workers(reg, ms))
        mh_registry_unref(reg);
    else
        mh_log(MH_LOG_WARNING, "a check is still in a run; exiting without waiting for it");
}

/* --check: every check once, concurrently, then the report. */
static int run_check_mode(struct mh_config *cfg)
{
    mh_ms longest = longest_timeout(cfg);
    struct mh_registry *reg = mh_registry_new(cfg, NULL, NULL);
    if (!reg || mh_workers_start(reg, MH_WORKER_ONCE) < 0) {
        fprintf(stderr, "magento-healthd: cannot start checks: %s\n", strerror(errno));
        finish_registry(reg, EXIT_WORKERS_MS);
        return 3;
    }
    /* A check stuck past its timeout stays "no result"; do not wait for it forever. */
    mh_registry_wait_all_reported(reg, longest + 1000);
    struct mh_snapshot *snap = malloc(sizeof *snap);
    char *body = NULL;
    enum mh_status status = MH_FAIL;
    /* An engineer at a terminal gets the table; a script or a pipe gets JSON. */
    bool table = !json_output && isatty(STDOUT_FILENO);
    if (snap) {
        mh_registry_snapshot(reg, snap);
        body = table ? mh_render_text(snap, MH_VIEW_REPORT, !getenv("NO_COLOR"), &status)
                     : mh_render(snap, MH_VIEW_REPORT, true, &status);
    }
    printf(table ? "%s" : "%s\n",
           body ? body : "{\"status\":\"fail\",\"output\":\"out of memory\"}");
    fflush(stdout);
    free(body);
    free(snap);
    finish_registry(reg, EXIT_WORKERS_MS);
    mh_log_flush(LOG_FLUSH_MS);
    return (int)status; /* 0 pass, 1 warn, 2 fail: the Nagios plugin convention */
}

struct daemon_state {
    const char *config_path;
    struct mh_registry *reg;
    struct mh_http *http;
    struct mh_notify *notify;
    mh_ms watchdog_ms;             /* 0: systemd asked for no watchdog */
    struct timespec next_watchdog; /* when WATCHDOG=1 is due */
    struct timespec ready_by;      /* READY=1 goes out by then, first results or not */
    bool ready_sent;
    bool shutting_down;
    struct timespec shutdown_at;
    char last_status[200];
    uint64_t status_generation; /* of the registry when STATUS= was last computed */
    bool status_computed;
    struct mh_file_id envphp_seen; /* env.php as of the last (re)load attempt */
    struct timespec next_envphp_poll;
};

static void publish(struct daemon_state *d)
{
    mh_http_publish(d->http, d->reg);
}

/* Worker threads call this after a status changed; d->http is set before any worker starts and
 * stays until they are stopped. */
static void on_results_changed(void *ctx)
{
    mh_http_refresh(((struct daemon_state *)ctx)->http);
}

static bool same_listen(const struct mh_server_conf *a, const struct mh_server_conf *b)
{
    if (a->n_listen != b->n_listen)
        return false;
    for (int i = 0; i < a->n_listen; i++)
        if (a->listen_len[i] != b->listen_len[i] ||
            memcmp(&a->listen[i], &b->listen[i], a->listen_len[i]) != 0)
            return false;
    return true;
}

static void notify_systemd(struct daemon_state *d);

/* While a reload waits for PHP (env_php_reader = php, up to php_timeout), the main loop's duties
 * go on from here: staleness, the bodies that depend on it, STATUS= and watchdog pings. A
 * SIGTERM or SIGINT waiting in the queue abandons the reload, so that the exit bound holds. */
static bool keep_main_loop_going(void *arg)
{
    struct daemon_state *d = arg;
    mh_registry_refresh(d->reg);
    mh_http_refresh(d->http);
    notify_systemd(d);
    sigset_t pending;
    return sigpending(&pending) != 0 ||
           (!sigismember(&pending, SIGTERM) && !sigismember(&pending, SIGINT));
}

static void reload(struct daemon_state *d)
{
    mh_notify_post(d->notify, "RELOADING=1");
    char err[MH_CONFIG_ERROR_MAX];
    const struct mh_magento_conf *running = &mh_registry_config(d->reg)->magento;
    /* An env.php in use must not silently vanish: missing is then an error, not "none". */
    struct mh_load_opts opts = {.require_env_php = running->env_php_used,
                                .waiting = keep_main_loop_going,
                                .waiting_arg = d};
    mh_file_id_of(running->env_php, &d->envphp_seen);
    struct mh_config *cfg = mh_config_load_with(d->config_path, &opts, err, sizeof err);
    if (!cfg) {
        mh_log(MH_LOG_ERR, "reload rejected, keeping the running configuration: %s", err);
        /* Shown by the magento check (affects nothing): errors never hold a secret. */
        mh_magento_status_set(err);
        mh_notify_post(d->notify, "READY=1");
        return;
    }
    mh_magento_status_set(NULL);
    if (strcmp(cfg->magento.env_php, running->env_php) != 0)
        mh_file_id_of(cfg->magento.env_php, &d->envphp_seen);
    if (!same_listen(&cfg->server, &mh_registry_config(d->reg)->server))
        mh_log(MH_LOG_WARNING, "reload: [server] listen changed; restart to apply it");
    struct mh_registry *fresh = mh_registry_new(cfg, log_transition, NULL);
    if (!fresh) {
        mh_log(MH_LOG_ERR, "reload failed: out of memory; keeping the running configuration");
        mh_notify_post(d->notify, "READY=1");
        return;
    }
    mh_registry_set_history(fresh, history);
    /* Nothing here waits for a check. The old workers are told to stop; each new worker waits,
     * on its own thread, for its predecessor to let go of the dependency (a check never holds
     * two connections) and takes over its latest result. Probes are served the adopted results
     * meanwhile, and the old registry is freed on a reaper thread once its last worker is out. */
    struct mh_registry *old = d->reg;
    mh_registry_stop(old);
    mh_registry_succeed(fresh, old);
    mh_registry_set_on_change(fresh, on_results_changed, d);
    if (d->shutting_down)
        mh_registry_set_shutting_down(fresh);
    d->reg = fresh;
    publish(d);
    mh_registry_release(old);
    if (mh_workers_start(fresh, MH_WORKER_FOREVER) < 0)
        mh_log(MH_LOG_ERR, "reload: cannot start checks: %s; results will go stale",
               strerror(errno));
    mh_log(MH_LOG_NOTICE, "reloaded %s: %d checks", d->config_path, cfg->n_checks);
    mh_notify_post(d->notify, "READY=1");
}

static void begin_shutdown(struct daemon_state *d, int sig)
{
    if (d->shutting_down)
        return;
    d->shutting_down = true;
    mh_ms delay = mh_registry_config(d->reg)->server.shutdown_delay;
    mh_log(MH_LOG_NOTICE, "%s: readiness now fails; exiting in %lld ms", strsignal(sig),
           (long long)delay);
    mh_notify_post(d->notify, "STOPPING=1");
    mh_registry_set_shutting_down(d->reg);
    publish(d);
    mh_deadline_in(&d->shutdown_at, delay);
}

/* Sends STATUS= when the statuses changed. Called every tick, so it snapshots only then. */
static void notify_status(struct daemon_state *d)
{
    uint64_t generation = mh_registry_generation(d->reg);
    if (d->status_computed && generation == d->status_generation)
        return;
    struct mh_snapshot *snap = malloc(sizeof *snap);
    if (!snap)
        return;
    mh_registry_snapshot(d->reg, snap);
    struct mh_readiness node, region;
    mh_readiness_compute(snap, MH_AFFECTS_NODE, &node);
    mh_readiness_compute(snap, MH_AFFECTS_REGION, &region);
    int passing = 0, total = 0;
    for (int i = 0; i < snap->n_checks; i++, total++) {
        bool ok = snap->checks[i].have_result;
        for (int m = 0; m < snap->checks[i].check->n_meas; m++)
            ok = ok && snap->checks[i].m[m].effective != MH_FAIL;
        passing += ok;
    }
    char status[200];
    snprintf(status, sizeof status, "STATUS=node %s, region %s (%s), %d/%d checks passing",
             node.status == MH_FAIL ? "not ready" : "ready",
             region.status == MH_FAIL ? "not ready" : "ready", mh_region_role_name(snap), passing,
             total);
    free(snap);
    d->status_generation = generation;
    d->status_computed = true;
    if (strcmp(status, d->last_status) != 0) {
        mh_notify_post(d->notify, status);
        strcpy(d->last_status, status);
    }
}

static void notify_systemd(struct daemon_state *d)
{
    if (d->watchdog_ms > 0 && mh_deadline_left(&d->next_watchdog) <= 0) {
        mh_notify_post(d->notify, "WATCHDOG=1");
        mh_deadline_in(&d->next_watchdog, d->watchdog_ms);
    }
    notify_status(d);
    if (!d->ready_sent &&
        (mh_registry_all_reported(d->reg) || mh_deadline_left(&d->ready_by) <= 0)) {
        mh_notify_post(d->notify, "READY=1");
        d->ready_sent = true;
    }
}

/* Once a second: has env.php been rewritten (or appeared, or gone) since the last attempt? A stat
 * is cheap and never waits on a check. */
static void poll_envphp(struct daemon_state *d)
{
    if (mh_deadline_left(&d->next_envphp_poll) > 0)
        return;
    mh_deadline_in(&d->next_envphp_poll, ENVPHP_POLL_MS);
    const char *path = mh_registry_config(d->reg)->magento.env_php;
    if (!path[0] || d->shutting_down)
        return;
    struct mh_file_id now;
    mh_file_id_of(path, &now);
    if (mh_file_id_equal(&now, &d->envphp_seen))
        return;
    mh_log(MH_LOG_NOTICE, "%s %s; reloading", path, now.exists ? "changed" : "is gone");
    reload(d);
}

static int main_loop(struct daemon_state *d, const sigset_t *signals)
{
    for (;;) {
        struct timespec tick = {0, TICK_MS * 1000000L};
        siginfo_t info;
        int sig = sigtimedwait(signals, &info, &tick);
        if (sig == SIGHUP)
            reload(d);
        else if (sig == SIGTERM || sig == SIGINT)
            begin_shutdown(d, sig);
        poll_envphp(d);
        mh_registry_refresh(d->reg); /* staleness */
        mh_http_refresh(d->http);
        notify_systemd(d);
        if (d->shutting_down && mh_deadline_left(&d->shutdown_at) <= 0)
            return 0;
    }
}

static int run_daemon(struct mh_config *cfg, const char *path, const sigset_t *signals)
{
    struct daemon_state d = {.config_path = path};
    d.envphp_seen = cfg->magento.id;
    mh_deadline_in(&d.next_envphp_poll, ENVPHP_POLL_MS);
    raise_fd_limit();
    d.reg = mh_registry_new(cfg, log_transition, NULL);
    history = mh_history_new();
    if (!d.reg || !history) {
        mh_log(MH_LOG_ERR, "out of memory");
        mh_registry_unref(d.reg);
        return 1;
    }
    mh_registry_set_history(d.reg, history);
    char err[256];
    /* Socket activation: systemd opened the port before we started; [server] listen is then
     * ignored. */
    int n_fds = sd_listen_fds(1);
    int fds[MH_MAX_LISTEN];
    for (int i = 0; i < n_fds && i < MH_MAX_LISTEN; i++)
        fds[i] = SD_LISTEN_FDS_START + i;
    if (n_fds > 0)
        mh_log(MH_LOG_NOTICE, "using %d listening socket(s) from systemd", n_fds);
    d.http = mh_http_start(d.reg, fds, n_fds > 0 ? n_fds : 0, err, sizeof err);
    if (!d.http) {
        mh_log(MH_LOG_ERR, "%s", err);
        mh_registry_unref(d.reg);
        return 1;
    }
    mh_registry_set_on_change(d.reg, on_results_changed, &d);
    d.notify = mh_notify_start();
    d.watchdog_ms = mh_notify_watchdog_interval_ms();
    mh_deadline_in(&d.ready_by, MH_WARMUP_MAX_MS + longest_timeout(cfg) + READY_SLACK_MS);
    if (mh_workers_start(d.reg, MH_WORKER_FOREVER) < 0) {
        mh_log(MH_LOG_ERR, "cannot start checks: %s", strerror(errno));
        finish_registry(d.reg, EXIT_WORKERS_MS);
        mh_http_stop(d.http);
        mh_notify_stop(d.notify, 0);
        return 1;
    }
    mh_log(MH_LOG_NOTICE, "magento-healthd %s: node %s, region %s, %d checks, config %s",
           MH_VERSION, cfg->server.node, cfg->server.region[0] ? cfg->server.region : "-",
           cfg->n_checks, path);
    int rc = main_loop(&d, signals);
    mh_registry_stop(d.reg); /* first: after it, no worker calls into d.http */
    mh_http_stop(d.http);
    finish_registry(d.reg, EXIT_WORKERS_MS);
    if (mh_notify_dropped(d.notify) > 0)
        mh_log(MH_LOG_WARNING, "%lu messages to systemd were dropped: it did not read them",
               mh_notify_dropped(d.notify));
    mh_log(MH_LOG_NOTICE, "stopped");
    mh_log_flush(LOG_FLUSH_MS);
    mh_notify_stop(d.notify, NOTIFY_FLUSH_MS);
    return rc;
}

/* Parses the command line. Returns -1 to go on, or the exit code (for --help, --version and
 * usage errors). */
static int parse_args(int argc, char **argv, const char **path, enum mode *mode)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'C'},
        {"test-config", no_argument, NULL, 't'},  {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},         {"json", no_argument, NULL, 'J'},
        {"print-config", no_argument, NULL, 'P'}, {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "c:tVh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            *path = optarg;
            break;
        case 'C':
            *mode = MODE_CHECK;
            break;
        case 't':
            *mode = MODE_TEST_CONFIG;
            break;
        case 'P':
            *mode = MODE_PRINT_CONFIG;
            break;
        case 'J':
            json_output = true;
            break;
        case 'V':
            printf("magento-healthd %s\n", MH_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 64; /* EX_USAGE */
        }
    }
    if (optind < argc) {
        fprintf(stderr, "magento-healthd: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 64;
    }
    return -1;
}

int main(int argc, char **argv)
{
    /* One malloc arena: every worker and HTTP thread would otherwise get one of its own. Our
     * allocation rate is tiny (probes are served from prepared responses); bench/README.md
     * measured about 0.6 MiB less RSS. */
    mallopt(M_ARENA_MAX, 1);
    const char *path = DEFAULT_CONFIG;
    enum mode mode = MODE_RUN;
    if (argc > 1 && strcmp(argv[1], "status") == 0)
        return mh_status_main(argc - 1, argv + 1, DEFAULT_CONFIG);
    int exit_now = parse_args(argc, argv, &path, &mode);
    if (exit_now >= 0)
        return exit_now;
    /* Block the signals we handle before any thread exists, so every thread inherits the mask. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (mode == MODE_PRINT_CONFIG)
        return print_config(path);
    struct mh_config *cfg = load_or_report(path);
    if (!cfg)
        return mode == MODE_CHECK ? 3 : 1; /* 3: UNKNOWN, in the plugin convention */
    if (mode == MODE_TEST_CONFIG) {
        printf("%s: configuration OK, %d checks\n", path, cfg->n_checks);
        mh_config_free(cfg);
        return 0;
    }
    if (mode == MODE_CHECK)
        return run_check_mode(cfg);
    int rc = run_daemon(cfg, path, &signals);
    mh_log_flush(LOG_FLUSH_MS); /* also after a start-up error: its line must get out */
    return rc;
}
