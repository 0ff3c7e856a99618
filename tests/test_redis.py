"""Integration tests for the redis check (issue 4), against real redis-server processes.

Each test starts its own servers (tests/svc_redis.py: own dir, unix socket, free port on
127.0.0.1), stopped by the fixture's finalizer even when the test fails. Timing is short
(interval 200ms, timeout 500ms) and every wait is a poll with a deadline.
"""
import os
import subprocess
import time

import pytest

from harness import BINARY, all_bodies, entry, newer_result, wait_until
from svc_redis import AclUser, RedisServer, wait_stopped

FAST = "interval = 200ms\ntimeout = 500ms\n"
PASSWORD = "correct-horse-battery-staple"
WRONG = "wrong-password-not-it"


@pytest.fixture
def redis_server(tmp_path):
    """Factory: redis_server(**options) starts a RedisServer; all are stopped afterwards."""
    servers = []

    def make(start=True, **kw):
        srv = RedisServer(tmp_path / f"redis{len(servers)}", **kw)
        servers.append(srv)
        return srv.start() if start else srv

    yield make
    for srv in servers:
        srv.stop()


def section(name, srv, body="", unix=False):
    return f"[check.{name}]\ntype = redis\n{FAST}{srv.healthd_keys(unix)}{body}\n"








def test_pass_reports_latency_role_and_defaults(healthd, redis_server):
    srv = redis_server()
    h = healthd(section("redis_session", srv, "role = session\n") +
                section("redis_cache", srv, "write = no\ndatabase = 1\n", unix=True))
    conn = h.check("/healthcheck", "redis_session:connectivity", status="pass")
    assert conn["componentType"] == "datastore"
    assert conn["observedUnit"] == "ms" and 0 < conn["observedValue"] < 500
    assert conn["output"].startswith("PONG in ")
    assert conn["affects"] == ["node", "region", "standby"]
    d = conn["details"]
    assert d["role"] == "writer" and d["redis_role"] == "master"
    assert d["database"] == "2" and d["endpoint"] == f"127.0.0.1:{srv.port}"
    assert d["version"].startswith("7.")

    w = h.check("/healthcheck", "redis_session:writable", status="pass")
    assert w["affects"] == ["region"] and w["observedUnit"] == "ms"
    key = "magento-healthd:test-node:redis_session"
    assert key in w["output"]
    with srv.client(db=2) as c:  # the write really happened, in Magento's session database
        assert c.exists(key) and 0 < c.pttl(key) <= 60000

    mem = h.check("/healthcheck", "redis_session:memory", status="pass")
    assert "observedValue" not in mem and "no maxmemory" in mem["output"]
    assert mem["affects"] == []

    cache = h.check("/healthcheck", "redis_cache:connectivity", status="pass")
    assert cache["affects"] == ["node"]
    assert cache["details"]["endpoint"] == srv.socket and cache["details"]["database"] == "1"
    assert "redis_cache:writable" not in h.get("/healthcheck").json()["checks"]
    h.wait_status("/healthcheck", 200)
    h.wait_status("/healthcheck/region", 200)


def test_stopped_server_fails_and_recovers_in_same_process(healthd, redis_server):
    srv = redis_server()
    h = healthd(section("redis_session", srv, "role = session\n"))
    h.check("/healthcheck", "redis_session:connectivity", status="pass")
    pid = h.proc.pid

    srv.stop()
    wait_stopped(srv.port)
    e = h.check("/healthcheck", "redis_session:connectivity", status="fail",
                output_contains="connect: ")
    assert "Connection refused" in e["output"] and f":{srv.port}" in e["output"]
    assert entry(h, "redis_session:writable")["status"] == "fail"
    h.wait_status("/healthcheck", 503)
    h.wait_status("/healthcheck/region", 503)

    srv.start()
    h.check("/healthcheck", "redis_session:connectivity", status="pass")
    h.check("/healthcheck", "redis_session:writable", status="pass")
    h.wait_status("/healthcheck", 200)
    assert h.proc.pid == pid and h.proc.poll() is None


def test_restart_between_runs_is_not_a_failure(healthd, redis_server):
    """The persistent connection is dead after a restart; the next run reconnects at once."""
    srv = redis_server()
    h = healthd(section("redis_session", srv, "role = session\ninterval = 3s\n")
                .replace("interval = 200ms\n", ""))
    first = h.check("/healthcheck", "redis_session:connectivity", status="pass")
    # Restart right after a run, so that the next run comes a whole interval later.
    def just_ran():
        e = newer_result(h, "redis_session:connectivity", first)
        return e if e and e["age"] < 0.3 else None
    before = wait_until(just_ran, 5, "a fresh result")
    assert "reused connection" in before["output"]
    srv.stop()
    srv.start()  # well within the 3 s interval
    after = wait_until(lambda: newer_result(h, "redis_session:connectivity", before), 5,
                       "the next run")
    assert after["status"] == "pass" and "new connection" in after["output"], after
    assert entry(h, "redis_session:writable")["status"] == "pass"
    assert "-> fail" not in h.log()


def test_frozen_server_fails_within_timeout_while_probes_stay_fast(healthd, redis_server):
    srv = redis_server()
    # max_age above interval + timeout, so that what shows is the check's own verdict, not "stale".
    h = healthd(section("redis_cache", srv, "max_age = 2s\n"))
    h.check("/healthcheck", "redis_cache:connectivity", status="pass")

    srv.freeze()
    frozen_at = time.monotonic()
    e = h.check("/healthcheck", "redis_cache:connectivity", status="fail", timeout=5)
    # One interval until the next run, then at most the 500 ms timeout, plus polling slack.
    assert time.monotonic() - frozen_at < 0.2 + 0.5 + 1.0, e
    assert "no reply within" in e["output"] or "timed out" in e["output"], e
    slowest = 0.0
    for _ in range(20):  # the probe answers from the cache: it never waits for Redis
        r = h.get("/healthcheck")
        assert r.status == 503
        slowest = max(slowest, r.elapsed)
    assert slowest < 0.25, slowest
    # Several runs against the frozen server: each is bounded, none wedges the worker.
    wait_until(lambda: entry(h, "redis_cache:connectivity")["age"] < 0.5, 3,
               "fresh results while frozen")
    assert entry(h, "redis_cache:connectivity")["duration"] < 0.8

    srv.thaw()
    h.check("/healthcheck", "redis_cache:connectivity", status="pass")
    h.check("/healthcheck", "redis_cache:writable", status="pass")


def test_requirepass_wrong_right_and_missing(healthd, redis_server, tmp_path):
    srv = redis_server(password=PASSWORD)
    wrong_file = tmp_path / "wrong.pw"
    wrong_file.write_text(WRONG + "\n")
    h = healthd(section("wrong", srv, f"password_file = {wrong_file}\n") +
                section("right", srv, "password_env = MH_TEST_REDIS_PW\n") +
                section("missing", srv),
                env={"MH_TEST_REDIS_PW": PASSWORD})
    e = h.check("/healthcheck", "wrong:connectivity", status="fail", output_contains="auth: ")
    assert "WRONGPASS" in e["output"]
    h.check("/healthcheck", "right:connectivity", status="pass")
    h.check("/healthcheck", "right:writable", status="pass")
    h.check("/healthcheck", "missing:connectivity", status="fail", output_contains="ping: NOAUTH")
    for secret in (PASSWORD, WRONG):
        assert secret not in all_bodies(h)
        assert secret not in h.log()


def test_acl_user_with_restricted_key_pattern(healthd, redis_server, tmp_path):
    healthd_user = AclUser("healthd", "acl-pass-1", keys="~healthd:*",
                           commands="-@all +ping +info +set +get +select")
    blind_user = AclUser("blind", "acl-pass-2", keys="~healthd:*",
                         commands="-@all +ping +set +get")
    srv = redis_server(password=PASSWORD, acl_users=[healthd_user, blind_user])
    pw = tmp_path / "acl.pw"
    pw.write_text("acl-pass-1")
    pw2 = tmp_path / "blind.pw"
    pw2.write_text("acl-pass-2")
    h = healthd(section("allowed", srv, f"username = healthd\npassword_file = {pw}\n"
                                        "key_prefix = healthd:\n") +
                section("outside", srv, f"username = healthd\npassword_file = {pw}\n") +
                section("baduser", srv, f"username = nobody\npassword_file = {pw}\n") +
                section("blind", srv, f"username = blind\npassword_file = {pw2}\n"
                                      "key_prefix = healthd:\n"))
    h.check("/healthcheck", "allowed:writable", status="pass")
    h.check("/healthcheck", "allowed:connectivity", status="pass")
    # The key outside the user's pattern: reachable, but the write is refused by name.
    h.check("/healthcheck", "outside:connectivity", status="pass")
    h.check("/healthcheck", "outside:writable", status="fail", output_contains="write: NOPERM")
    h.check("/healthcheck", "baduser:connectivity", status="fail",
            output_contains="auth: WRONGPASS")
    # A user without INFO: still reachable and writable; only memory and role are unknown.
    h.check("/healthcheck", "blind:writable", status="pass")
    mem = h.check("/healthcheck", "blind:memory", status="warn", output_contains="info: NOPERM")
    assert "role" not in mem.get("details", {})
    assert "acl-pass" not in all_bodies(h)


def test_replica_is_read_only_for_sessions_and_fine_for_a_cache(healthd, redis_server):
    master = redis_server()
    replica = redis_server(replicaof=master)
    replica.wait_replicating()
    h = healthd(section("redis_session", replica, "role = session\n") +
                section("redis_page_cache", replica, "write = no\n"))
    e = h.check("/healthcheck", "redis_session:writable", status="fail",
                output_contains="write: session store is read-only (a replica): READONLY")
    assert e["affects"] == ["region"]
    conn = h.check("/healthcheck", "redis_session:connectivity", status="pass")
    assert conn["details"]["role"] == "reader" and conn["details"]["redis_role"] == "replica"
    assert conn["details"]["master_link"] == "up"
    h.check("/healthcheck", "redis_page_cache:connectivity", status="pass")
    # Reachable but read-only: the node still serves, the region is not the active one.
    h.wait_status("/healthcheck", 200)
    h.wait_status("/healthcheck/region", 503, body_contains="redis_session:writable")

    # A region failover promotes the replica; the check follows without a restart.
    replica.promote()
    h.check("/healthcheck", "redis_session:writable", status="pass")
    h.wait_status("/healthcheck/region", 200)
    # The role is read before the write: a run can see the promotion only at its SET.
    wait_until(lambda: entry(h, "redis_session:connectivity")["details"]["role"] == "writer", 5,
               "the role to follow the promotion")


def test_full_server_reports_oom_on_write(healthd, redis_server):
    srv = redis_server()
    used = srv.info("memory")["used_memory"]
    srv.set_maxmemory(used + 2 * 1024 * 1024, "noeviction")
    srv.fill_until_oom()
    h = healthd(section("redis_session", srv, "role = session\ndatabase = 0\n"))
    h.check("/healthcheck", "redis_session:writable", status="fail", output_contains="write: OOM")
    h.check("/healthcheck", "redis_session:connectivity", status="pass")
    mem = h.check("/healthcheck", "redis_session:memory", status="fail")
    assert mem["observedUnit"] == "%" and mem["observedValue"] >= 98, mem
    assert "noeviction" in mem["output"] and mem["details"]["maxmemory_policy"] == "noeviction"


def test_memory_thresholds_and_evicting_policy(healthd, redis_server):
    srv = redis_server()
    used = srv.info("memory")["used_memory"]
    srv.set_maxmemory(used * 4, "noeviction")  # about 25 %
    h = healthd(section("strict", srv, "memory_warn = 10%\nmemory_fail = 90%\n") +
                section("relaxed", srv, "write = no\n"))
    mem = h.check("/healthcheck", "strict:memory", status="warn")
    assert 15 < mem["observedValue"] < 40, mem
    h.check("/healthcheck", "relaxed:memory", status="pass")
    # allkeys-* evicts what it must: a full cache is working as designed.
    srv.set_maxmemory(used * 4, "allkeys-lru")
    h.check("/healthcheck", "strict:memory", status="pass", output_contains="allkeys-lru")


def test_unresolvable_host_is_reported_by_stage(healthd):
    h = healthd("[check.redis_cache]\ntype = redis\nhost = no-such-host.invalid\n" + FAST)
    e = h.check("/healthcheck", "redis_cache:connectivity", status="fail",
                output_contains="resolve: no-such-host.invalid")
    assert e["duration"] < 0.8


@pytest.mark.parametrize("body, key", [
    ("password = hunter2-inline\n", "password"),
    ("username = u\n", "username"),
    ("role = primary\n", "role"),
    ("memory_warn = 512K\n", "memory_warn"),
    ("memory_warn = 95%\nmemory_fail = 90%\n", "memory_warn"),
    ("socket = /tmp/x.sock\nhost = 127.0.0.1\n", "socket"),
    ("write = no\nwritable_affects = node\n", "writable_affects"),
    ("port = 70000\n", "port"),
    ("tls = yes\nsocket = /tmp/x.sock\n", "tls"),  # an error with and without hiredis_ssl
    ("nonsense = 1\n", "nonsense"),
])
def test_config_errors_name_the_key(tmp_path, body, key):
    conf = tmp_path / "bad.conf"
    conf.write_text("[server]\nlisten = 127.0.0.1:1\n\n[check.r]\ntype = redis\n" + body)
    r = subprocess.run([BINARY, "--test-config", "-c", str(conf)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode != 0, r
    assert f"[check.r] {key}:" in r.stderr, r.stderr
    assert "hunter2" not in r.stderr


def test_check_mode_runs_once(tmp_path, redis_server):
    srv = redis_server()
    conf = tmp_path / "once.conf"
    conf.write_text("[server]\nlisten = 127.0.0.1:1\nnode = n1\n\n" +
                    section("redis_session", srv, "role = session\n"))
    r = subprocess.run([BINARY, "--check", "-c", str(conf)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0, r
    assert '"redis_session:writable"' in r.stdout
    assert os.path.exists(srv.socket)


def test_paused_writes_do_not_flap_connectivity(healthd, redis_server):
    """Issue 11, defect 5: during CLIENT PAUSE WRITE the PING answers at once and the write
    stalls to the deadline. The run then ends a hair past its timeout; connectivity answered in
    time and must stay pass in every run (it decides node readiness on every web node), while
    writable fails on its own."""
    srv = redis_server()
    h = healthd(section("session", srv, "role = session\nrise = 1\nfall = 1\n"))
    h.check("/healthcheck", "session:writable", status="pass")
    client = srv.client()
    seen = []
    deadline = time.monotonic() + 4
    client.execute_command("CLIENT", "PAUSE", "4000", "WRITE")
    try:
        while time.monotonic() < deadline:
            r = h.get("/healthcheck")
            body = r.json()
            conn = body["checks"]["session:connectivity"][0]
            seen.append((r.status, conn["status"], body["checks"]["session:writable"][0]["status"]))
            time.sleep(0.02)
    finally:
        client.execute_command("CLIENT", "UNPAUSE")
    assert any(w == "fail" for _, _, w in seen), "the write never stalled: " + repr(seen[-5:])
    assert all(c == "pass" for _, c, _ in seen), [s for s in seen if s[1] != "pass"][:5]
    assert all(code == 200 for code, _, _ in seen), "node readiness flapped"
