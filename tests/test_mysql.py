"""The mysql check against real MariaDB servers (Debian mariadb-server) started by the tests.

Each test starts its own server(s) on a private datadir, socket and free port (svc_mariadb) and a
real magento-healthd. The check logs in as a dedicated user "healthd" that has only the grants
README documents, so its server-side connections can be counted in the processlist.
"""
import os
import re
import socket
import threading
import time

import pymysql
import pytest

from harness import entry, wait_until
from tlsfiles import make_tls_files

PASSWORD = "Hc-7f3q9-pass"  # must never show up in any output
INTERVAL, TIMEOUT = 0.2, 0.5
FAST = (f"interval = {int(INTERVAL * 1000)}ms\ntimeout = {int(TIMEOUT * 1000)}ms\nrise = 1\nfall = 1\n"
        "max_age = 2s\n")


@pytest.fixture
def pwfile(tmp_path):
    path = tmp_path / "mysql.pw"
    path.write_text(PASSWORD + "\n")
    return path


def add_check_user(db, grants=None):
    db.add_healthd_user(PASSWORD, grants=grants)


def section(name, db, pwfile, extra="", tcp=True, user="healthd", host="127.0.0.1"):
    where = f"host = {host}\nport = {db.port}\n" if tcp else f"socket = {db.socket}\n"
    return (f"[check.{name}]\ntype = mysql\n{where}user = {user}\n"
            f"password_file = {pwfile}\n{FAST}{extra}\n")




def runs(h, name, count):
    """Entries of `count` successive runs of check entry `name` (told apart by their time)."""
    seen = {}

    def enough():
        e = entry(h, name)
        seen.setdefault(e["time"], e)
        return len(seen) >= count
    wait_until(enough, 10, f"{count} runs of {name}")
    return list(seen.values())


def test_pass_reports_latency_writer_role_and_heartbeat(mariadb, healthd, pwfile):
    db = mariadb(extra_args=["--performance-schema=on"])
    add_check_user(db)
    h = healthd(section("db", db, pwfile, "writer_region = test-region\n"))
    conn = h.check("/healthcheck", "db:connectivity", status="pass")
    assert conn["observedUnit"] == "ms" and 0 < conn["observedValue"] < TIMEOUT * 1000
    assert conn["details"]["role"] == "writer"
    assert {"node", "region"} <= set(conn["affects"])
    assert conn["componentType"] == "datastore" and "writer" in conn["output"]
    wr = h.check("/healthcheck", "db:writable", status="pass")
    assert wr["affects"] == ["region"]
    lag = h.check("/healthcheck", "db:lag", status="pass")
    assert "region" in lag["affects"] and lag["observedUnit"] == "ms"
    assert 0 <= lag["observedValue"] < 1000
    assert h.get("/healthcheck").status == 200 and h.get("/healthcheck/region").status == 200
    rows = db.sql("SELECT node, region, ts FROM magento_healthd.magento_healthd_heartbeat")
    assert [(r[0], r[1]) for r in rows] == [("test-node", "test-region")]
    # One persistent connection, reused run after run, named for the DBAs.
    ids = {e["details"]["connection_id"] for e in runs(h, "db:connectivity", 4)}
    assert len(ids) == 1 and entry(h, "db:connectivity")["details"]["connects"] == "1"
    assert db.value("SELECT ATTR_VALUE FROM performance_schema.session_connect_attrs "
                    "WHERE ATTR_NAME = 'program_name' AND PROCESSLIST_ID = %s",
                    (int(ids.pop()),)) == "magento-healthd"


def test_server_stopped_fails_then_recovers_in_same_process(mariadb, healthd, pwfile):
    db = mariadb()
    add_check_user(db)
    # By name: the check resolves it itself, bounded by the deadline, and tries each address.
    h = healthd(section("db", db, pwfile, host="localhost"))
    h.check("/healthcheck", "db:connectivity", status="pass")
    db.stop()
    stopped = time.monotonic()
    failed = h.check("/healthcheck", "db:connectivity", status="fail", output_contains="connect:",
                     timeout=5)
    assert time.monotonic() - stopped < INTERVAL + TIMEOUT + 0.3, failed
    assert "Can't connect" in failed["output"]
    assert h.get("/healthcheck").status == 503
    pid = h.proc.pid
    db.start()
    h.check("/healthcheck", "db:connectivity", status="pass", timeout=5)
    h.check("/healthcheck", "db:writable", status="pass", timeout=5)
    assert h.poll_alive() and h.proc.pid == pid
    assert entry(h, "db:connectivity")["details"]["connects"] == "2"


class SilentListener:
    """A TCP server that accepts connections and never sends a byte (a hung database)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self):
        self.sock.close()
        for c in self.held:
            c.close()


@pytest.fixture
def silent_listener():
    srv = SilentListener()
    yield srv
    srv.close()


def test_silent_server_fails_within_timeout_and_probes_stay_fast(silent_listener, healthd,
                                                                 pwfile):
    h = healthd(f"[check.db]\ntype = mysql\nhost = 127.0.0.1\nport = {silent_listener.port}\n"
                f"user = healthd\npassword_file = {pwfile}\nwrite = no\naffects = node\n{FAST}")
    started = time.monotonic()
    e = h.check("/healthcheck", "db:connectivity", status="fail", output_contains="connect:",
                timeout=5)
    assert time.monotonic() - started < INTERVAL + TIMEOUT + 0.5
    assert "no answer" in e["output"] and e["duration"] <= TIMEOUT + 0.25, e
    wait_until(lambda: silent_listener.held, 2, "the check to reach the listener")
    for _ in range(20):  # while runs keep hanging on the listener
        r = h.get("/healthcheck")
        assert r.status == 503 and r.elapsed < 0.1, r.elapsed


def test_write_blocked_by_global_read_lock_times_out(mariadb, healthd, pwfile):
    db = mariadb()
    add_check_user(db)
    h = healthd(section("db", db, pwfile))
    h.check("/healthcheck", "db:writable", status="pass")
    lock = db.connect()
    try:
        lock.cursor().execute("FLUSH TABLES WITH READ LOCK")
        e = h.check("/healthcheck", "db:writable", status="fail", output_contains="write:",
                    timeout=5)
        assert "timed out" in e["output"], e
        for e in runs(h, "db:writable", 5):
            assert e["status"] == "fail" and "write:" in e["output"], e
            assert db.connections_of("healthd") <= 1
            assert h.get("/healthcheck").elapsed < 0.1
        # writable affects the region only: the node stays ready while writes hang.
        h.wait_status("/healthcheck", 200, timeout=5)
    finally:
        lock.close()
    h.check("/healthcheck", "db:writable", status="pass", timeout=5)
    assert db.connections_of("healthd") == 1


def test_read_only_server_is_a_reader_and_not_writable(mariadb, healthd, pwfile):
    db = mariadb()
    add_check_user(db)  # no SUPER / READ_ONLY ADMIN: read_only applies to it
    h = healthd(section("db", db, pwfile))
    h.check("/healthcheck", "db:writable", status="pass")
    db.set_read_only(True)
    e = h.check("/healthcheck", "db:writable", status="fail", output_contains="not writable")
    assert "read-only" in e["output"] and e["details"]["role"] == "reader"
    c = h.check("/healthcheck", "db:connectivity", status="pass")
    assert c["details"]["role"] == "reader"
    assert h.get("/healthcheck").status == 200 and h.get("/healthcheck/region").status == 503
    db.set_read_only(False)
    assert h.check("/healthcheck", "db:writable", status="pass")["details"]["role"] == "writer"


@pytest.mark.parametrize("errno", [1290, 1836, 1792])
def test_read_only_errors_mean_not_writable(mariadb, healthd, pwfile, errno):
    """A write refused with a read-only error is "not writable", not a connection failure.
    A trigger raises the exact error numbers Aurora and MySQL use for readers."""
    db = mariadb()
    add_check_user(db)
    h = healthd(section("db", db, pwfile))
    h.check("/healthcheck", "db:writable", status="pass")
    db.sql("CREATE TRIGGER magento_healthd.ro BEFORE UPDATE ON magento_healthd_heartbeat "
           "FOR EACH ROW SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = %s, "
           "MESSAGE_TEXT = 'server is read-only'", (errno,))
    e = h.check("/healthcheck", "db:writable", status="fail", output_contains="not writable")
    assert f"{errno} server is read-only" in e["output"], e
    assert entry(h, "db:connectivity")["status"] == "pass"


def test_wrong_password_is_an_auth_failure_without_the_password(mariadb, healthd, tmp_path):
    db = mariadb()
    add_check_user(db)
    wrong = "Wr0ng-" + PASSWORD
    (tmp_path / "wrong.pw").write_text(wrong)
    h = healthd(section("db", db, tmp_path / "wrong.pw"))
    e = h.check("/healthcheck", "db:connectivity", status="fail", output_contains="auth:")
    assert "Access denied for user 'healthd'" in e["output"], e
    assert h.check("/healthcheck", "db:writable", status="fail", output_contains="auth:")
    for path in ("/healthcheck", "/healthcheck/region"):
        body = h.get(path).body
        assert wrong not in body and PASSWORD not in body
    assert wrong not in h.log() and PASSWORD not in h.log()


def test_missing_table_without_create_privilege_prints_the_sql(mariadb, healthd, pwfile):
    db = mariadb()
    add_check_user(db, grants=["SELECT, INSERT, UPDATE ON magento_healthd.*"])
    h = healthd(section("db", db, pwfile, tcp=False))  # also covers the unix socket
    e = h.check("/healthcheck", "db:writable", status="fail", output_contains="CREATE TABLE")
    assert "CREATE denied" in e["output"], e
    assert entry(h, "db:connectivity")["status"] == "pass"
    db.sql(re.search(r"run: (CREATE TABLE .*)$", e["output"]).group(1))
    h.check("/healthcheck", "db:writable", status="pass")


def test_replica_reports_reader_and_lag_until_replication_stops(mariadb, healthd, pwfile):
    primary, replica = mariadb(), mariadb()
    replica.replicate_from(primary)
    add_check_user(primary)  # replicated: the replica gets the schema and the user too
    replica.wait_caught_up(primary)
    lag_conf = "write = no\nwriter_region = test-region\nlag_warn = 600ms\nlag_fail = 1200ms\n"
    h = healthd(section("primary", primary, pwfile) + section("replica", replica, pwfile, lag_conf))
    h.check("/healthcheck", "primary:writable", status="pass")
    lag = h.check("/healthcheck", "replica:lag", status="pass", timeout=10)
    assert lag["details"]["role"] == "reader" and lag["observedUnit"] == "ms"
    assert 0 <= lag["observedValue"] < 600
    assert entry(h, "replica:connectivity")["details"]["role"] == "reader"
    assert entry(h, "primary:connectivity")["details"]["role"] == "writer"
    replica.stop_replication()
    e = h.check("/healthcheck", "replica:lag", status="fail", output_contains="lag:", timeout=5)
    assert e["observedValue"] >= 1200
    assert re.search(r"replication lag \d+\.\d s > 1\.2 s", e["output"]), e["output"]
    assert h.get("/healthcheck/region").status == 503
    replica.start_replication()
    h.check("/healthcheck", "replica:lag", status="pass", timeout=10)


def test_at_max_connections_the_persistent_connection_keeps_working(mariadb, healthd, pwfile):
    db = mariadb(extra_args=["--max-connections=6"])
    add_check_user(db)
    db.create_user("filler", "filler-pw")
    h = healthd(section("db", db, pwfile))
    h.check("/healthcheck", "db:writable", status="pass")
    monitor = db.connect()  # taken before the server is full
    fillers = [monitor]
    try:
        with pytest.raises(pymysql.err.OperationalError, match="1040"):
            for _ in range(10):
                fillers.append(db.connect(user="filler", password="filler-pw", tcp=True))
        for e in runs(h, "db:connectivity", 5):
            assert e["status"] == "pass", e
            with monitor.cursor() as cur:
                cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST"
                            " WHERE USER = 'healthd'")
                assert cur.fetchone()[0] == 1
        assert entry(h, "db:writable")["status"] == "pass"
        assert entry(h, "db:connectivity")["details"]["connects"] == "1"
    finally:
        for c in fillers:
            c.close()


@pytest.mark.parametrize("body, needle", [
    ("host = 127.0.0.1\nsocket = /run/mysqld/mysqld.sock\nuser = u\n", "exactly one of host"),
    ("host = 127.0.0.1\n", "user"),
    ("host = 127.0.0.1\nuser = u\npassword = hunter2-inline\n", "password"),
    ("host = 127.0.0.1\nuser = u\nheartbeat_table = a;b\n", "heartbeat_table"),
    ("host = 127.0.0.1\nuser = u\nlag_fail = 1s\n", "writer_region"),
])
def test_bad_config_is_refused(healthd, body, needle):
    import subprocess
    from harness import BINARY
    h = healthd(f"[check.db]\ntype = mysql\n{body}", start=False)
    r = subprocess.run([BINARY, "--test-config", "-c", h.config_path], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode != 0 and needle in r.stderr, r.stderr
    assert "hunter2" not in r.stderr


def test_tls_required_by_the_server(mariadb, healthd, pwfile, tmp_path):
    d = make_tls_files(tmp_path, "IP:127.0.0.1")
    db = mariadb(extra_args=[f"--ssl-ca={d / 'ca.pem'}", f"--ssl-cert={d / 'server.pem'}",
                             f"--ssl-key={d / 'server.key'}", "--require-secure-transport=ON"])
    add_check_user(db)
    h = healthd(section("tls", db, pwfile, f"tls = yes\ntls_ca = {d / 'ca.pem'}\n")
                + section("plain", db, pwfile)
                + section("wrongca", db, pwfile, f"tls = yes\ntls_ca = {d / 'wrong-ca.pem'}\n"))
    h.check("/healthcheck", "tls:connectivity", status="pass")
    h.check("/healthcheck", "tls:writable", status="pass")
    # MariaDB refuses a login without TLS under require_secure_transport as "access denied".
    e = h.check("/healthcheck", "plain:connectivity", status="fail")
    assert e["output"].startswith(("connect:", "auth:")), e
    e = h.check("/healthcheck", "wrongca:connectivity", status="fail", output_contains="connect:")
    assert "TLS" in e["output"] and "certificate" in e["output"], e


def test_tls_by_host_name_verifies_the_name_the_config_gives(mariadb, healthd, pwfile, tmp_path):
    """With tls = yes and a host name, Connector/C is given the name, resolves it itself (on an
    abandonable helper thread, see test_faults.py) and checks the certificate against it."""
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    make_tls_files(good, "DNS:localhost")
    make_tls_files(bad, "DNS:db.example.test")
    db_good = mariadb(extra_args=[f"--ssl-ca={good / 'ca.pem'}", f"--ssl-cert={good / 'server.pem'}",
                                  f"--ssl-key={good / 'server.key'}", "--require-secure-transport=ON"])
    db_bad = mariadb(extra_args=[f"--ssl-ca={bad / 'ca.pem'}", f"--ssl-cert={bad / 'server.pem'}",
                                 f"--ssl-key={bad / 'server.key'}", "--require-secure-transport=ON"])
    add_check_user(db_good)
    add_check_user(db_bad)
    h = healthd(section("named", db_good, pwfile, f"tls = yes\ntls_ca = {good / 'ca.pem'}\n",
                        host="localhost")
                + section("othername", db_bad, pwfile, f"tls = yes\ntls_ca = {bad / 'ca.pem'}\n",
                          host="localhost"))
    e = h.check("/healthcheck", "named:connectivity", status="pass")
    h.check("/healthcheck", "named:writable", status="pass")
    assert db_good.connections_of("healthd") == 1
    # Same CA, valid certificate, but issued to another name: refused.
    e = h.check("/healthcheck", "othername:connectivity", status="fail")
    assert e["output"].startswith("connect:") and "certificate" in e["output"].lower(), e
    assert PASSWORD not in h.get("/healthcheck").body + h.log()


def test_connectivity_keeps_its_answer_while_the_write_stalls(mariadb, healthd, pwfile):
    """Issue 11, defect 5: the SELECT answered in time, so connectivity (node readiness) stays
    pass while the heartbeat write waits on a global read lock and fails on its own."""
    db = mariadb()
    add_check_user(db)
    h = healthd(section("db", db, pwfile))
    h.check("/healthcheck", "db:writable", status="pass")
    lock = db.connect()
    try:
        lock.cursor().execute("FLUSH TABLES WITH READ LOCK")
        h.check("/healthcheck", "db:writable", status="fail", output_contains="write:", timeout=5)
        for e in runs(h, "db:connectivity", 6):
            assert e["status"] == "pass", e
    finally:
        lock.close()


def tcp_connections_to(pid, port):
    """How many TCP sockets process `pid` has open to `port`, counted on the client side: the
    server may list a closed session for a moment after the client has sent its QUIT."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
                    count += 1
    return count


def test_reload_never_holds_two_connections(mariadb, healthd, pwfile):
    """SIGHUP stops the old check (and closes its connection) before the new one connects."""
    import signal
    db = mariadb()
    add_check_user(db)
    h = healthd(section("db", db, pwfile))
    h.check("/healthcheck", "db:connectivity", status="pass")
    assert tcp_connections_to(h.proc.pid, db.port) == 1
    most = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            most[0] = max(most[0], tcp_connections_to(h.proc.pid, db.port))
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        for i in range(5):
            before = h.log().count("reloaded")
            h.signal(signal.SIGHUP)
            wait_until(lambda: h.log().count("reloaded") > before, 10, "the reload")
            runs(h, "db:connectivity", 2)  # the new check connected and ran
    finally:
        stop.set()
        sampler.join()
    assert most[0] == 1, f"magento-healthd held {most[0]} connections during a reload"
    assert h.get("/healthcheck").status == 200


def test_probe_storm_adds_no_database_load(mariadb, healthd, pwfile):
    """Thousands of probes cause no database query: queries per check run stay the same."""
    from harness import http_get
    db = mariadb()
    add_check_user(db)
    h = healthd(section("db", db, pwfile, "writer_region = any\n"),
                server_extra="details_from = 127.0.0.1/32\n")
    h.check("/healthcheck", "db:lag", status="pass")

    def runs_total():
        for line in h.get("/metrics").body.splitlines():
            if line.startswith('magento_healthd_check_runs_total{check="db"'):
                return int(line.split()[-1])
        raise AssertionError("no runs_total for db")

    def questions():  # each call is itself one question
        return int(db.value("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
                            "WHERE VARIABLE_NAME = 'QUESTIONS'"))

    def window(probes):
        r0, q0 = runs_total(), questions()
        start = time.monotonic()
        sent = 0
        while sent < probes or runs_total() < r0 + 5:
            if sent < probes:
                # The public view, as the ALB gets it (127.0.0.2 is outside details_from). A
                # 503 is possible when one run on a loaded machine overruns its timeout.
                status = http_get(h.host, h.port, "/healthcheck", source="127.0.0.2").status
                assert status in (200, 503), status
                sent += 1
            else:
                time.sleep(0.01)
            assert time.monotonic() - start < 60
        r1, q1 = runs_total(), questions()
        return (q1 - q0 - 1) / (r1 - r0), sent

    idle_per_run, _ = window(0)
    storm_per_run, sent = window(3000)
    assert sent == 3000
    # Per check run the daemon asks the same few questions, probes or not (one run may be in
    # flight at either end of a window, hence the slack of one run's worth).
    assert storm_per_run <= idle_per_run * 1.5 + 1, (idle_per_run, storm_per_run)
    assert db.connections_of("healthd") == 1
