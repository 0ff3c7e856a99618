"""Magento-aware configuration (issue 12): checks derived from app/etc/env.php.

Real MariaDB, Redis and php-fpm (tests/svc_*.py) are driven from env.php files in every shape
Magento writes: TCP and socket forms, host:port, "localhost"-free socket paths, an L2
(RemoteSynchronizedCache) cache, a slave connection, a non-redis session handler, PHP
expressions with and without env_php_reader = php. Broken files (truncated, unreadable, a wrong
type, nesting too deep, megabytes of junk, invalid UTF-8) are refused with a clear error at start,
and ignored - the last good configuration keeps running, the detailed view shows why - while
running. A rewritten env.php is followed without a restart. No password from env.php ever shows
up in a body, a log line, an error or --print-config.
"""
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from harness import BINARY, Notifications, WRAPPER, entry, notify_socket, wait_until
from svc_fpm import Fpm
from svc_redis import RedisServer

DB_PW = "Env-db-Pw-91f3"           # Magento's database password in env.php
HEALTHD_PW = "Healthd-Pw-55e1"     # magento-healthd's own database user
REDIS_PW = "Env-redis-Pw-7c2a"     # the session and cache Redis password in env.php
SECRETS = [DB_PW, HEALTHD_PW, REDIS_PW]
FAST = "interval = 200ms\ntimeout = 500ms\nmax_age = 3s\n"


@pytest.fixture
def redis_server(tmp_path):
    servers = []

    def make(**kw):
        srv = RedisServer(tmp_path / f"redis{len(servers)}", **kw)
        servers.append(srv)
        return srv.start()

    yield make
    for srv in servers:
        srv.stop()


@pytest.fixture
def fpm():
    pools = []

    def make(**kw):
        f = Fpm(**kw)
        pools.append(f)
        return f.start()

    yield make
    for f in pools:
        f.stop()
        f.cleanup()


@pytest.fixture
def site(tmp_path):
    """A Magento root with app/etc, and magento-healthd's own database password file."""
    root = tmp_path / "magento"
    (root / "app" / "etc").mkdir(parents=True)
    pw = tmp_path / "healthd-db.pw"
    pw.write_text(HEALTHD_PW + "\n")
    return root, pw


def php_str(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def php(value, indent=1):
    """A Python value as the PHP array literal Magento writes."""
    pad = "    " * indent
    if isinstance(value, dict):
        items = "".join(f"{pad}{php_str(str(k))} => {php(v, indent + 1)},\n" for k, v in value.items())
        return "[\n" + items + "    " * (indent - 1) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, Raw):
        return value.text
    return php_str(str(value))


class Raw:
    """PHP text written as is (an expression)."""

    def __init__(self, text):
        self.text = text


def env_php(root, tree):
    path = root / "app" / "etc" / "env.php"
    tmp = path.with_suffix(".tmp")
    tmp.write_text("<?php\nreturn " + php(tree) + ";\n")
    os.replace(tmp, path)  # as a deploy does: never half a file
    return path


def magento_env(db=None, session=None, cache=None, page_cache=None, slave=None, extra=None):
    tree = {"backend": {"frontName": "admin"}, "MAGE_MODE": "production",
            "crypt": {"key": "0123456789abcdef"}}
    if db:
        tree["db"] = {"table_prefix": "", "connection": {"default": {
            "host": db, "dbname": "magento", "username": "magento", "password": DB_PW,
            "model": "mysql4", "engine": "innodb", "initStatements": "SET NAMES utf8;",
            "active": "1", "driver_options": {1014: False}}}}
        if slave:
            tree["db"]["slave_connection"] = {"default": {
                "host": slave, "dbname": "magento", "username": "magento", "password": DB_PW}}
    if session:
        tree["session"] = session
    if cache or page_cache:
        tree["cache"] = {"frontend": {}}
        if cache:
            tree["cache"]["frontend"]["default"] = cache
        if page_cache:
            tree["cache"]["frontend"]["page_cache"] = page_cache
    tree.update(extra or {})
    return tree


def redis_session(host, port, password=REDIS_PW, database="2"):
    return {"save": "redis", "redis": {"host": host, "port": str(port), "password": password,
                                       "timeout": "2.5", "persistent_identifier": "",
                                       "database": database, "compression_threshold": "2048",
                                       "log_level": "4", "max_concurrency": "6"}}


def redis_cache(server, port, database, password=REDIS_PW, backend="Magento\\Framework\\Cache\\Backend\\Redis"):
    return {"id_prefix": "abc_", "backend": backend,
            "backend_options": {"server": server, "database": database, "port": str(port),
                                "password": password, "compress_data": "1",
                                "compression_lib": ""}}


def overrides(*names, extra=""):
    """Fast timing for derived checks: [check.NAME] sections that override key by key."""
    return "".join(f"[check.{n}]\n{FAST}{extra}\n" for n in names)


def magento_section(root, pw, extra=""):
    return f"[magento]\nmagento_root = {root}\ndb_user = healthd\ndb_password_file = {pw}\n{extra}\n"




def assert_no_secret(*texts):
    for t in texts:
        for s in SECRETS:
            assert s not in t, f"a password leaked: {t[:300]}"


def all_output(h):
    return "".join(h.get(p).body for p in ["/healthcheck", "/healthcheck/region",
                                           "/healthcheck/live"]) + h.log()


def run(args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(WRAPPER + [BINARY] + args, capture_output=True, text=True, timeout=60,
                          env=e)


# ---- derived checks against real services ----

def test_tcp_forms_drive_real_mariadb_redis_and_fpm(mariadb, healthd, redis_server, fpm, site):
    root, pw = site
    db = mariadb()
    db.add_healthd_user(HEALTHD_PW)
    srv = redis_server(password=REDIS_PW)
    f = fpm()
    env_php(root, magento_env(
        db=f"127.0.0.1:{db.port}", slave=f"127.0.0.1:{db.port}",
        session=redis_session("127.0.0.1", srv.port),
        cache=redis_cache("127.0.0.1", srv.port, "0"),
        page_cache=redis_cache("tcp://127.0.0.1", srv.port, "1", backend="Cm_Cache_Backend_Redis")))
    h = healthd(magento_section(root, pw) +
                overrides("db", "db_replica", "redis_session", "redis_cache", "redis_page_cache") +
                f"[check.fpm]\ntype = fpm\nsocket = {f.socket}\nstatus_socket = {f.status_socket}\n"
                f"status_path = /status\nping_path = /ping\n{FAST}")
    for name in ["db:connectivity", "db:writable", "db_replica:connectivity",
                 "redis_session:connectivity", "redis_session:writable",
                 "redis_cache:connectivity", "redis_page_cache:connectivity", "fpm:ping"]:
        h.check("/healthcheck", name, status="pass", timeout=15)
    body = h.get("/healthcheck").json()
    assert "db_replica:writable" not in body["checks"]  # a replica is only read
    # The derived checks test what Magento uses: the Redis databases of env.php.
    wait_until(lambda: srv.client(db=2).keys("magento-healthd:*"), 5, "session write in db 2")
    wait_until(lambda: srv.client(db=1).keys("magento-healthd:*"), 5, "page cache write in db 1")
    # The magento check: MAGE_MODE and the env.php path as facts; it affects nothing.
    m = h.check("/healthcheck", "magento:env_php", status="pass")
    assert m["details"]["mage_mode"] == "production"
    assert m["details"]["env_php"].endswith("/app/etc/env.php")
    h.wait_status("/healthcheck", 200)
    assert_no_secret(all_output(h))


def test_socket_forms_l2_cache_and_files_session(mariadb, healthd, redis_server, site):
    root, pw = site
    db = mariadb()
    db.add_healthd_user(HEALTHD_PW)
    srv = redis_server(password=REDIS_PW)
    l2 = {"backend": "\\Magento\\Framework\\Cache\\Backend\\RemoteSynchronizedCache",
          "backend_options": {
              "remote_backend": "\\Magento\\Framework\\Cache\\Backend\\Redis",
              "remote_backend_options": {"persistent": 0, "server": srv.socket, "database": "4",
                                         "password": REDIS_PW, "port": "0"},
              "local_backend": "Cm_Cache_Backend_File",
              "local_backend_options": {"cache_dir": "/dev/shm/"}},
          "frontend_options": {"write_control": False}}
    env_php(root, magento_env(db=db.socket, session={"save": "files"}, cache=l2,
                              page_cache=redis_cache("unix://" + srv.socket, 0, "5")))
    h = healthd(magento_section(root, pw) + overrides("db", "redis_cache", "redis_page_cache"))
    h.check("/healthcheck", "db:connectivity", status="pass", timeout=15)
    h.check("/healthcheck", "redis_cache:connectivity", status="pass")
    h.check("/healthcheck", "redis_page_cache:connectivity", status="pass")
    wait_until(lambda: srv.client(db=4).keys("magento-healthd:*"), 5, "the L2 remote (db 4)")
    body = h.get("/healthcheck").json()
    assert "redis_session:connectivity" not in body["checks"]  # files: reported, not guessed at
    m = h.check("/healthcheck", "magento:env_php", status="pass")
    assert m["details"]["session_save"].startswith("files")
    assert_no_secret(all_output(h))


def test_credentials_magento_uses_magentos_user_and_schema(mariadb, healthd, site):
    root, pw = site
    db = mariadb()
    db.create_database("magento")
    db.create_user("magento", DB_PW, ["ALL ON `magento`.*"])
    env_php(root, magento_env(db=f"127.0.0.1:{db.port}"))
    h = healthd(f"[magento]\nmagento_root = {root}\ncredentials = magento\n" + overrides("db"))
    h.check("/healthcheck", "db:connectivity", status="pass", timeout=15)
    h.check("/healthcheck", "db:writable", status="pass")
    # The heartbeat goes into Magento's own schema: its user has no other.
    assert db.value("SELECT COUNT(*) FROM magento.magento_healthd_heartbeat") >= 1
    assert db.connections_of("magento") >= 1
    assert_no_secret(all_output(h))


def test_print_config_shows_origins_and_hides_secrets(healthd, site, tmp_path):
    root, pw = site
    path = env_php(root, magento_env(db="db.example:3307", session=redis_session("r.example", 6390)))
    h = healthd(magento_section(root, pw) + "[check.redis_session]\ninterval = 5s\n", start=False)
    r = run(["-c", h.config_path, "--print-config"])
    assert r.returncode == 0, r.stderr
    out = r.stdout
    lines = open(path).read().splitlines()
    host_line = next(i + 1 for i, l in enumerate(lines) if "db.example" in l)
    assert f"host = db.example  # {path}:{host_line}" in out
    assert f"port = 3307  # {path}:{host_line}" in out
    assert f"user = healthd  # {h.config_path}:" in out
    assert f"password = (secret from {path})" in out
    assert f"interval = 5s  # {h.config_path}:" in out
    assert "timeout = 1s  # default" in out
    assert "mage_mode = production" in out
    assert_no_secret(out, r.stderr)


# ---- PHP expressions ----

def test_expressions_need_the_php_reader(healthd, redis_server, site):
    root, pw = site
    srv = redis_server(password=REDIS_PW)
    sess = redis_session(Raw("getenv('MH_TEST_SESSION_HOST')"), srv.port)
    sess["redis"]["host"] = Raw("getenv('MH_TEST_SESSION_HOST')")
    env_php(root, magento_env(session=sess))
    env = {"MH_TEST_SESSION_HOST": "127.0.0.1"}
    h = healthd(f"[magento]\nmagento_root = {root}\n" + overrides("redis_session"), start=False,
                env=env)
    r = run(["-c", h.config_path, "--test-config"], env)
    assert r.returncode == 1
    assert "a PHP expression (getenv) is not a literal; use env_php_reader = php" in r.stderr
    assert str(root / "app/etc/env.php") + ":" in r.stderr
    # The PHP reader evaluates it in a bounded child process.
    h.write_config(f"[magento]\nmagento_root = {root}\nenv_php_reader = php\n" +
                   overrides("redis_session"))
    h.start()
    h.check("/healthcheck", "redis_session:connectivity", status="pass", timeout=15)
    assert_no_secret(all_output(h))


def test_a_slow_php_reader_never_stalls_the_main_loop(healthd, redis_server, site, tmp_path):
    """env_php_reader = php runs at reload on the main thread; while PHP takes its time, the main
    loop's duties (watchdog pings, staleness) must go on."""
    root, pw = site
    srv = redis_server(password=REDIS_PW)
    path = env_php(root, magento_env(session=redis_session("127.0.0.1", srv.port)))
    good = path.read_text()
    sock, notify = notify_socket(tmp_path)
    notes = Notifications(sock)
    h = healthd(f"[magento]\nmagento_root = {root}\nenv_php_reader = php\nphp_timeout = 10s\n" +
                overrides("redis_session"),
                env={"NOTIFY_SOCKET": notify, "WATCHDOG_USEC": "1000000"})  # a ping every 0.5 s
    wait_until(lambda: notes.first("READY=1"), 15, "READY=1")
    h.check("/healthcheck", "redis_session:connectivity", status="pass")
    # The same configuration, from a PHP file that takes 4 s to evaluate.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(good.replace("<?php\n", "<?php\nsleep(4);\n", 1))
    os.replace(tmp, path)
    started = time.monotonic()
    # Draining as we wait stamps each message when it comes.
    wait_until(lambda: notes.drain() is not None and ("reloaded" in h.log() or
                                                      "reload rejected" in h.log()),
               15, "the reload")
    assert time.monotonic() - started >= 4, "PHP did not take its 4 s"
    pings = [t for t in notes.times("WATCHDOG=1") if t >= started - 1]
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert pings and max(gaps) < 1.5, f"watchdog gaps while PHP ran: {gaps}"
    assert "reloaded" in h.log(), h.log()[-2000:]
    # A SIGTERM while PHP runs abandons the reload: the exit bound (shutdown_delay + 2 s) holds.
    tmp.write_text(good.replace("<?php\n", "<?php\nsleep(8);\n", 1))
    os.replace(tmp, path)
    wait_until(lambda: h.log().count("changed; reloading") >= 2, 5, "the second reload")
    stopped = time.monotonic()
    h.proc.send_signal(signal.SIGTERM)
    assert h.proc.wait(10) == 0
    assert time.monotonic() - stopped < 2.0 + 0.75, "the exit waited for PHP"
    assert "abandoned (shutting down)" in h.log(), h.log()[-2000:]
    sock.close()


# ---- broken env.php files ----

def broken_variants(root):
    """(name, writer) pairs; each writer breaks env.php in its own way."""
    path = root / "app" / "etc" / "env.php"

    def write(data):
        def w():
            if path.is_dir():
                path.rmdir()
            path.write_bytes(data)
        return w

    def as_directory():
        path.unlink()
        path.mkdir()

    good = ("<?php\nreturn " + php(magento_env(session=redis_session("127.0.0.1", 1))) + ";\n").encode()
    return [
        ("truncated", write(good[:len(good) // 2]), "truncated"),
        ("unreadable", as_directory, "is a directory"),
        ("wrong type", write(b"<?php return ['session' => ['save' => 'redis', 'redis' => 5]];"),
         "session.redis: expected an array"),
        ("too deep", write(b"<?php return " + b"[" * 100 + b"]" * 100 + b";"), "nested deeper than"),
        ("junk", write(os.urandom(3 * 1024 * 1024)), "larger than"),
        ("invalid utf-8", write(b"<?php return ['session' => ['save' => '\xff\xfe']];"),
         "not valid UTF-8"),
    ]


def test_broken_without_last_good_configuration(healthd, site):
    root, pw = site
    h = healthd(f"[magento]\nmagento_root = {root}\n", start=False)
    for name, breaker, why in broken_variants(root):
        breaker()
        r = run(["-c", h.config_path, "--test-config"])
        assert r.returncode == 1, name
        assert why in r.stderr, (name, r.stderr)
        assert r.stderr.count("\n") == 1, (name, r.stderr)  # one line, no crash
        assert "app/etc/env.php" in r.stderr
        assert_no_secret(r.stderr)


def test_broken_keeps_last_good_configuration(healthd, redis_server, site):
    root, pw = site
    srv = redis_server(password=REDIS_PW)
    path = env_php(root, magento_env(session=redis_session("127.0.0.1", srv.port)))
    good = path.read_bytes()
    h = healthd(f"[magento]\nmagento_root = {root}\n" + overrides("redis_session"))
    h.check("/healthcheck", "redis_session:connectivity", status="pass", timeout=15)
    h.check("/healthcheck", "magento:env_php", status="pass")
    for i, (name, breaker, why) in enumerate(broken_variants(root)):
        breaker()
        if i % 2:
            h.signal(signal.SIGHUP)  # the same path as the poll
        h.check("/healthcheck", "magento:env_php", status="warn", output_contains=why, timeout=10)
        # The last good configuration keeps running; readiness stays up.
        assert entry(h, "redis_session:connectivity")["status"] == "pass", name
        assert h.get("/healthcheck").status == 200, name
        h.poll_alive()
        if path.is_dir():
            path.rmdir()
        path.write_bytes(good)
        h.check("/healthcheck", "magento:env_php", status="pass", timeout=10)
    # A missing env.php (mid-deploy) is no different.
    path.unlink()
    h.check("/healthcheck", "magento:env_php", status="warn", output_contains="cannot open")
    assert h.get("/healthcheck").status == 200
    assert "reload rejected" in h.log()
    assert_no_secret(all_output(h))


def test_an_env_php_the_service_may_not_read(tmp_path):
    """env.php is usually mode 0640, group www-data, and the service runs as a dynamic user: a
    clear error that names the drop-in, and the file's group (SupplementaryGroups=) is enough.
    The daemon runs as nobody here (setpriv), so the directory must be reachable by it."""
    d = tempfile.mkdtemp(prefix="mh-envphp-perm.")
    try:
        root = pathlib.Path(d) / "magento"
        (root / "app" / "etc").mkdir(parents=True)
        for p in (pathlib.Path(d), root, root / "app", root / "app" / "etc"):
            os.chmod(p, 0o755)
        path = env_php(root, magento_env(session=redis_session("127.0.0.1", 6390)))
        os.chown(path, 0, 4242)
        os.chmod(path, 0o640)
        conf = pathlib.Path(d) / "h.conf"
        conf.write_text(f"[server]\nlisten = 127.0.0.1:1\n[magento]\nmagento_root = {root}\n"
                        f"[check.drain]\ntype = drain\nfile = {d}/drain\n")
        os.chmod(conf, 0o644)

        def as_service(groups):
            return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", groups, BINARY,
                                   "-c", str(conf), "--test-config"], capture_output=True,
                                  text=True, timeout=30)
        r = as_service("--clear-groups")
        assert r.returncode == 1, r
        assert f"{path}: cannot open: Permission denied" in r.stderr, r.stderr
        assert "SupplementaryGroups=www-data" in r.stderr, r.stderr
        assert_no_secret(r.stderr)
        r = as_service("--groups=4242")  # the drop-in, in small: the file's group
        assert r.returncode == 0, r.stderr
        assert "configuration OK, 3 checks" in r.stdout, r.stdout  # drain, magento, redis_session
    finally:
        shutil.rmtree(d)


# ---- following a rewritten env.php ----

def test_moving_the_session_store_is_followed_without_restart(healthd, redis_server, site):
    root, pw = site
    a = redis_server(password=REDIS_PW)
    b = redis_server(password="Other-" + REDIS_PW)
    env_php(root, magento_env(session=redis_session("127.0.0.1", a.port)))
    h = healthd(f"[magento]\nmagento_root = {root}\n" + overrides("redis_session"))
    h.check("/healthcheck", "redis_session:connectivity", status="pass", timeout=15)
    wait_until(lambda: a.client(db=2).keys("magento-healthd:*"), 5, "the session write on A")
    pid = h.proc.pid
    # The deploy moves the session store to B (another password, database 3), and A goes away.
    env_php(root, magento_env(session=redis_session("127.0.0.1", b.port,
                                                    password="Other-" + REDIS_PW, database="3")))
    a.stop()
    wait_until(lambda: b.client(db=3).keys("magento-healthd:*"), 10, "the session write on B")
    h.check("/healthcheck", "redis_session:connectivity", status="pass")
    h.wait_status("/healthcheck", 200)
    assert h.proc.pid == pid and h.proc.poll() is None
    assert "changed; reloading" in h.log()
    assert "Other-" + REDIS_PW not in all_output(h)
