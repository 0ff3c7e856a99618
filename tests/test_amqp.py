"""Integration tests for the amqp check (issue 14), against a real rabbitmq-server.

Starting RabbitMQ takes seconds, so the module starts ONE broker (tests/svc_rabbitmq.py: own node
name, data dir, Erlang cookie, epmd, free ports on 127.0.0.1, a plain and a TLS listener) and
gives each test its own virtual host. The check logs in as a least-privileged user (permissions
"^$" "^$" "^$": it may neither create, write nor read anything) to show that a passive
queue.declare and basic.qos need nothing more. Timing is short (interval 200ms, timeout 500ms);
every wait is a poll with a deadline.
"""
import os
import socket
import ssl
import subprocess
import threading
import time

import pytest

from harness import BINARY, all_bodies, entry, newer_result, wait_until
from netns import SwallowingResolverNetns
from svc_rabbitmq import RabbitMQ
from tlsfiles import make_tls_files

FAST = "interval = 200ms\ntimeout = 500ms\n"
PASSWORD = "amqp-correct-horse-battery"
WRONG = "amqp-wrong-password-not-it"
SLACK = 0.75
VHOSTS = ["/", "pass", "auth", "queues", "backlog", "consumers", "restart", "frozen", "tls"]
HANGING_NAME = "mq.unresolvable.mh.test"  # not in the namespace's hosts: its lookup never ends


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    tls = make_tls_files(tmp_path_factory.mktemp("amqp-tls"), "DNS:localhost")
    rmq = RabbitMQ(tmp_path_factory.mktemp("rabbitmq"), vhosts=VHOSTS,
                   users={"healthd": PASSWORD}, permissions={"healthd": ("^$", "^$", "^$")},
                   tls=tls)
    rmq.tls_dir = tls
    try:
        rmq.start()
        yield rmq
    finally:
        rmq.close()


@pytest.fixture
def rmq(broker):
    """The module's broker, running and thawed whatever an earlier test left behind."""
    if broker.frozen:
        broker.thaw()
    if not broker.running():
        broker.start()
    return broker


@pytest.fixture
def pwfile(tmp_path):
    p = tmp_path / "amqp.pw"
    p.write_text(PASSWORD + "\n")
    return p


def section(name, rmq, pwfile, vhost, body="", port=None, host=None):
    return (f"[check.{name}]\ntype = amqp\n{FAST}host = {host or rmq.host}\n"
            f"port = {port or rmq.port}\nvhost = {vhost}\nuser = healthd\n"
            f"password_file = {pwfile}\n{body}\n")








def test_pass_reports_round_trip_queues_facts_and_defaults(healthd, rmq, pwfile):
    rmq.declare_queue("pass", "async.operations.all")
    consumer = rmq.consumer("pass", "async.operations.all")
    try:
        h = healthd(section("mq", rmq, pwfile, "pass"))
        conn = h.check("/healthcheck", "mq:connectivity", status="pass")
        assert conn["componentType"] == "component"
        assert conn["observedUnit"] == "ms" and 0 < conn["observedValue"] < 500
        assert conn["output"].startswith("round trip in "), conn
        assert conn["affects"] == ["node", "region", "standby"]
        d = conn["details"]
        assert d["endpoint"] == f"127.0.0.1:{rmq.port}" and d["vhost"] == "pass"
        assert d["broker"].startswith("RabbitMQ 3."), d
        assert d["heartbeat"] == "10 s", d  # 2 x (200ms + 500ms), at least 10 s

        q = h.check("/healthcheck", "mq:queues", status="pass")
        assert q["affects"] == [], q  # reported only
        assert q["output"] == "async.operations.all: 0 ready, 1 consumer", q
        assert q["observedValue"] == 0 and q["observedUnit"] == "messages"
        assert q["details"]["async.operations.all"] == "0 ready, 1 consumers"
        h.wait_status("/healthcheck", 200)
        h.wait_status("/healthcheck/region", 200)
        # The connection is kept: later runs reuse it.
        later = wait_until(lambda: newer_result(h, "mq:connectivity", conn), 3, "a later run")
        assert "reused connection" in later["output"], later
    finally:
        consumer.close()


def test_wrong_password_and_missing_vhost_fail_auth_without_leaking(healthd, rmq, pwfile,
                                                                    tmp_path):
    wrong = tmp_path / "wrong.pw"
    wrong.write_text(WRONG + "\n")
    h = healthd(section("wrong", rmq, wrong, "auth", "queues =\n") +
                section("novhost", rmq, pwfile, "no-such-vhost", "queues =\n") +
                section("right", rmq, pwfile, "auth", "queues =\n"))
    e = h.check("/healthcheck", "wrong:connectivity", status="fail", output_contains="auth: ")
    assert "403 ACCESS_REFUSED" in e["output"], e
    e = h.check("/healthcheck", "novhost:connectivity", status="fail", output_contains="auth: ")
    assert "530 NOT_ALLOWED" in e["output"] and "no-such-vhost" in e["output"], e
    h.check("/healthcheck", "right:connectivity", status="pass")
    assert "right:queues" not in h.get("/healthcheck").json()["checks"]  # queues = (empty)
    h.wait_status("/healthcheck", 503)
    for secret in (PASSWORD, WRONG):
        assert secret not in all_bodies(h)
        assert secret not in h.log()


def test_missing_queue_fails_and_the_others_are_still_read(healthd, rmq, pwfile):
    rmq.declare_queue("queues", "present")
    h = healthd(section("mq", rmq, pwfile, "queues",
                        "queues = missing.queue, present\nconsumers_min = 0\n"))
    q = h.check("/healthcheck", "mq:queues", status="fail", output_contains="queue missing.queue")
    assert "404 NOT_FOUND" in q["output"] and "present: 0 ready, 0 consumers" in q["output"], q
    # The 404 closed the channel; the next runs reopen it and connectivity keeps passing.
    first = h.check("/healthcheck", "mq:connectivity", status="pass")
    later = wait_until(lambda: newer_result(h, "mq:connectivity", first), 3, "a later run")
    assert later["status"] == "pass" and "reused connection" in later["output"], later
    h.wait_status("/healthcheck", 200)  # queues affect nothing by default
    # Passive: the check created nothing.
    with rmq.connection("queues") as c:
        import pika
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            c.channel().queue_declare("missing.queue", passive=True)


def test_backlog_over_the_thresholds_warns_then_fails(healthd, rmq, pwfile):
    rmq.declare_queue("backlog", "async.operations.all")
    rmq.publish("backlog", "async.operations.all", 5)
    assert rmq.queue_state("backlog", "async.operations.all") == (5, 0)
    h = healthd(section("mq", rmq, pwfile, "backlog",
                        "backlog_warn = 2\nbacklog_fail = 10\nconsumers_min = 0\n"))
    q = h.check("/healthcheck", "mq:queues", status="warn", output_contains="over backlog_warn")
    assert q["output"] == "queue async.operations.all: 5 ready (over backlog_warn), 0 consumers", q
    assert q["observedValue"] == 5
    rmq.publish("backlog", "async.operations.all", 10)
    q = h.check("/healthcheck", "mq:queues", status="fail", output_contains="over backlog_fail")
    assert q["observedValue"] == 15, q
    assert entry(h, "mq:connectivity")["status"] == "pass"
    h.wait_status("/healthcheck", 200)
    h.wait_status("/healthcheck/region", 200)


def test_no_consumer_warns_until_one_attaches(healthd, rmq, pwfile):
    rmq.declare_queue("consumers", "async.operations.all")
    h = healthd(section("mq", rmq, pwfile, "consumers") +
                section("gated", rmq, pwfile, "consumers", "queues_affects = node\n"))
    q = h.check("/healthcheck", "mq:queues", status="warn", output_contains="below consumers_min")
    assert q["output"] == ("queue async.operations.all: 0 ready, 0 consumers "
                           "(below consumers_min)"), q
    # queues_affects opts a node in: a warn is not a failure, so the node stays in service.
    assert entry(h, "gated:queues")["affects"] == ["node"]
    h.wait_status("/healthcheck", 200)
    consumer = rmq.consumer("consumers", "async.operations.all")
    try:
        h.check("/healthcheck", "mq:queues", status="pass",
                output_contains="async.operations.all: 0 ready, 1 consumer")
    finally:
        consumer.close()
    h.check("/healthcheck", "mq:queues", status="warn", output_contains="0 consumers")


def test_stopped_broker_fails_and_the_daemon_reconnects_by_itself(healthd, rmq, pwfile):
    rmq.declare_queue("restart", "async.operations.all")
    h = healthd(section("mq", rmq, pwfile, "restart", "consumers_min = 0\n"))
    h.check("/healthcheck", "mq:connectivity", status="pass")
    pid = h.proc.pid
    rmq.stop()
    # While the broker shuts down the check may see CONNECTION_FORCED or a listener that no
    # longer greets; once it is down, the port refuses.
    e = h.check("/healthcheck", "mq:connectivity", status="fail",
                output_contains="Connection refused")
    assert e["output"] == f"connect: 127.0.0.1:{rmq.port}: Connection refused", e
    assert entry(h, "mq:queues")["status"] == "fail"
    h.wait_status("/healthcheck", 503)
    h.wait_status("/healthcheck/region", 503)
    rmq.start()
    e = h.check("/healthcheck", "mq:connectivity", status="pass", timeout=10)
    h.check("/healthcheck", "mq:queues", status="pass")
    h.wait_status("/healthcheck", 200)
    assert h.proc.pid == pid and h.proc.poll() is None


def test_restart_between_runs_is_not_a_failure(healthd, rmq, pwfile):
    """The broker closes the kept connection when it stops (320 CONNECTION_FORCED); the next run
    finds it closed and opens a new one at once instead of failing. The interval must outlast a
    broker restart, which took over 11 s with the whole suite running on 2 cores."""
    interval = 20.0
    h = healthd(section("mq", rmq, pwfile, "restart", "queues =\n")
                .replace("interval = 200ms\n", f"interval = {interval:.0f}s\n"))
    first = h.check("/healthcheck", "mq:connectivity", status="pass")
    restarted_at = time.monotonic()
    rmq.stop()
    rmq.start()
    took = time.monotonic() - restarted_at
    assert took < interval - 1, f"the restart took {took:.1f} s, longer than a run"
    after = wait_until(lambda: newer_result(h, "mq:connectivity", first), interval + 2,
                       "the next run")
    assert after["status"] == "pass" and "new connection" in after["output"], after
    assert "-> fail" not in h.log()


def test_frozen_broker_fails_within_the_timeout_while_probes_stay_fast(healthd, rmq, pwfile):
    rmq.declare_queue("frozen", "async.operations.all")
    # max_age above interval + timeout, so that what shows is the check's own verdict.
    h = healthd(section("mq", rmq, pwfile, "frozen", "consumers_min = 0\nmax_age = 2s\n"))
    h.check("/healthcheck", "mq:connectivity", status="pass")
    rmq.freeze()
    try:
        frozen_at = time.monotonic()
        e = h.check("/healthcheck", "mq:connectivity", status="fail", timeout=5)
        assert time.monotonic() - frozen_at < 0.2 + 0.5 + 1.0, e
        assert "channel: no reply within" in e["output"], e
        slowest = 0.0
        for _ in range(20):  # probes answer from memory: never wait for the broker
            r = h.get("/healthcheck")
            assert r.status == 503
            slowest = max(slowest, r.elapsed)
        assert slowest < 0.1, slowest
        # Later runs open new connections, which the kernel accepts and the broker never
        # answers: each ends at its deadline ("connect: ... sent no AMQP greeting within").
        later = wait_until(lambda: (lambda x: x if "no AMQP greeting" in x["output"] else None)(
            entry(h, "mq:connectivity")), 3, "a run on a new connection")
        assert later["duration"] <= 0.5 + SLACK, later
        wait_until(lambda: entry(h, "mq:connectivity")["age"] < 0.5, 3, "fresh results")
    finally:
        rmq.thaw()
    h.check("/healthcheck", "mq:connectivity", status="pass", timeout=10)
    h.check("/healthcheck", "mq:queues", status="pass")


def test_tls_with_a_self_signed_ca(healthd, rmq, pwfile):
    """A host name goes through librabbitmq's own resolution on a helper thread, so that the
    certificate is checked against that name; an address is checked as given."""
    tls = rmq.tls_dir
    ca = f"tls_ca = {tls / 'ca.pem'}\n"
    q = "queues =\n"
    h = healthd(section("byname", rmq, pwfile, "tls", f"tls = yes\n{ca}{q}", port=rmq.tls_port,
                        host="localhost") +
                section("byaddr", rmq, pwfile, "tls", f"tls = yes\n{ca}{q}", port=rmq.tls_port) +
                section("noverify", rmq, pwfile, "tls", f"tls = yes\ntls_verify = no\n{q}",
                        port=rmq.tls_port) +
                section("wrongca", rmq, pwfile, "tls",
                        f"tls = yes\ntls_ca = {tls / 'wrong-ca.pem'}\n{q}", port=rmq.tls_port,
                        host="localhost") +
                section("plainport", rmq, pwfile, "tls", f"tls = yes\ntls_verify = no\n{q}") +
                section("notls", rmq, pwfile, "tls", q, port=rmq.tls_port))
    e = h.check("/healthcheck", "byname:connectivity", status="pass")
    assert e["details"]["endpoint"] == f"localhost:{rmq.tls_port}"
    e = h.check("/healthcheck", "byaddr:connectivity", status="fail", output_contains="tls: ")
    assert "hostname verification failed" in e["output"], e
    h.check("/healthcheck", "noverify:connectivity", status="pass")
    e = h.check("/healthcheck", "wrongca:connectivity", status="fail", output_contains="tls: ")
    assert "verification failed" in e["output"] and "wrong-ca.pem" in e["output"], e
    e = h.check("/healthcheck", "plainport:connectivity", status="fail", output_contains="tls: ")
    e = h.check("/healthcheck", "notls:connectivity", status="fail",
                output_contains="without an AMQP greeting")
    assert e["output"].startswith("connect: ") and "tls = yes" in e["output"], e


class TlsListener:
    """A TLS server (Python's ssl, not a broker) that records the SNI name of each handshake."""

    def __init__(self, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.names = []
        self.ctx.sni_callback = lambda sock, name, ctx: self.names.append(name)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            try:
                conn.settimeout(1)
                with self.ctx.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def close(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()


def test_tls_by_name_sends_the_name_and_checks_the_certificate_against_it(healthd, rmq, pwfile):
    tls = rmq.tls_dir
    srv = TlsListener(str(tls / "other.pem"), str(tls / "other.key"))
    try:
        h = healthd(section("mq", rmq, pwfile, "tls",
                            f"tls = yes\ntls_ca = {tls / 'ca.pem'}\nqueues =\n", port=srv.port,
                            host="localhost"))
        e = h.check("/healthcheck", "mq:connectivity", status="fail", output_contains="tls: ")
        assert "hostname verification failed" in e["output"], e
        assert "localhost" in srv.names, srv.names  # SNI carries the configured name
    finally:
        srv.close()


def test_dns_is_bounded_by_the_timeout(tmp_path, healthd, pwfile):
    """With a resolver that swallows every query: the plain connection's lookup is the daemon's
    own (getaddrinfo_a) and ends at the deadline; a verified TLS connection by name runs
    librabbitmq's own lookup on one abandonable helper, also reported at the deadline."""
    ns = SwallowingResolverNetns(str(tmp_path / "netns"))
    try:
        body = (f"[check.plain]\ntype = amqp\nhost = {HANGING_NAME}\nuser = healthd\n"
                f"password_file = {pwfile}\ninterval = 1s\ntimeout = 500ms\n\n"
                f"[check.tls]\ntype = amqp\nhost = {HANGING_NAME}\nuser = healthd\n"
                f"password_file = {pwfile}\ntls = yes\ntls_ca = /etc/ssl/certs/ca-certificates.crt\n"
                "interval = 1s\ntimeout = 500ms\n")
        h = healthd(body, start=False)
        ns.host(h).start()
        e = h.check("/healthcheck", "plain:connectivity", status="fail", timeout=5 + 1 + SLACK,
                    output_contains="resolve:")
        assert "no answer from DNS in time" in e["output"] and e["duration"] <= 0.5 + SLACK, e
        e = h.check("/healthcheck", "tls:connectivity", status="fail", timeout=5 + 1 + SLACK,
                    output_contains="timed out")
        assert HANGING_NAME in e["output"] and e["duration"] <= 0.5 + SLACK, e
        later = wait_until(lambda: (lambda x: x if "since an earlier run" in x["output"] else None)(
            entry(h, "tls:connectivity")), 5, "a run that waits on the same helper")
        assert later["duration"] <= 0.5 + SLACK, later
        names = [open(f"/proc/{h.proc.pid}/task/{t}/comm").read().strip()
                 for t in os.listdir(f"/proc/{h.proc.pid}/task")]
        assert names.count("mh-offload") <= 1, names
        assert h.get("/healthcheck/live").elapsed < 0.1
        h.stop()  # exits at once, abandoning the helper and the lookup
    finally:
        ns.stop()


@pytest.mark.parametrize("body, key", [
    ("password = hunter2-inline\n", "password"),
    ("", "password_file"),
    ("password_file = /etc/hostname\nuser =\n", "user"),
    ("password_file = /etc/hostname\ntls_ca = /etc/hostname\n", "tls_ca"),
    ("password_file = /etc/hostname\ntls = yes\ntls_ca = /nonexistent/ca.pem\n", "tls_ca"),
    ("password_file = /etc/hostname\ntls = yes\ntls_ca = /etc/hostname\n", "tls_ca"),
    ("password_file = /etc/hostname\nbacklog_warn = 10\nbacklog_fail = 5\n", "backlog_warn"),
    ("password_file = /etc/hostname\nqueues =\nqueues_affects = node\n", "queues_affects"),
    ("password_file = /etc/hostname\nport = 0\n", "port"),
    ("password_file = /etc/hostname\nnonsense = 1\n", "nonsense"),
])
def test_config_errors_name_the_key(tmp_path, body, key):
    conf = tmp_path / "bad.conf"
    host = "" if key == "host" else "host = mq.example.internal\n"
    user = "" if "user =" in body else "user = healthd\n"
    conf.write_text("[server]\nlisten = 127.0.0.1:1\n\n[check.q]\ntype = amqp\n" + host + user +
                    body)
    r = subprocess.run([BINARY, "--test-config", "-c", str(conf)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode != 0, r
    assert f"[check.q] {key}:" in r.stderr, r.stderr
    assert "hunter2" not in r.stderr


def test_a_valid_config_passes_test_config(tmp_path, pwfile):
    conf = tmp_path / "ok.conf"
    conf.write_text("[server]\nlisten = 127.0.0.1:1\n\n[check.q]\ntype = amqp\n"
                    "host = b-1234.mq.eu-west-1.amazonaws.com\ntls = yes\nuser = healthd\n"
                    f"password_file = {pwfile}\n"
                    "queues = async.operations.all, product_action_attribute.update\n")
    r = subprocess.run([BINARY, "--test-config", "-c", str(conf)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0, r
