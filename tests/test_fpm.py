"""The fpm check against real php-fpm (Debian php8.2-fpm), started per test on unix sockets.

Covers: a pass with real observed values; php-fpm stopped and started again under one
magento-healthd; saturation (one worker kept busy by slow.php) seen through pm.status_listen while
the ping times out within the deadline and /healthcheck stays fast; a wrong ping.response; a
status path the pool does not serve; and configuration errors.
"""
import os
import subprocess
import time

import pytest

from harness import BINARY, entry, free_port, wait_until
from svc_fpm import Fpm

TIMEOUT_S = 0.5


@pytest.fixture
def fpm():
    """Factory: fpm(**kw) starts a php-fpm pool; every one is stopped and removed afterwards."""
    pools = []

    def make(start=True, **kw):
        f = Fpm(**kw)
        pools.append(f)
        if start:
            f.start()
        return f

    yield make
    for f in pools:
        f.cleanup()


def fpm_conf(f, extra="", status_socket=True):
    lines = ["[check.fpm]", "type = fpm", f"socket = {f.socket}", "interval = 200ms",
             f"timeout = {int(TIMEOUT_S * 1000)}ms"]
    if status_socket and f.status_socket:
        lines.append(f"status_socket = {f.status_socket}")
    return "\n".join(lines) + "\n" + extra




def test_pass_with_real_observed_values(healthd, fpm):
    f = fpm(max_children=3)
    h = healthd(fpm_conf(f))
    st = h.check("/healthcheck", "fpm:status", status="pass")
    ping = h.check("/healthcheck", "fpm:ping", status="pass")
    assert st["observedUnit"] == "%" and 0 <= st["observedValue"] <= 100
    assert st["componentType"] == "component" and st["affects"] == ["node"]
    d = st["details"]
    assert d["pool"] == "www" and d["total_processes"] == "3"
    assert int(d["idle_processes"]) + int(d["active_processes"]) == 3
    assert d["listen_queue"] == "0" and int(d["accepted_conn"]) >= 1
    for key in ("max_children_reached", "slow_requests"):
        assert d[key].isdigit()
    assert st["output"].endswith("workers busy, listen queue 0")
    assert ping["output"] == "pong" and ping["observedUnit"] == "ms"
    assert 0 < ping["observedValue"] < TIMEOUT_S * 1000
    assert ping["affects"] == ["node"]
    # The counters are php-fpm's own: they move as our probes arrive.
    first = int(d["accepted_conn"])
    wait_until(lambda: int(entry(h, "fpm:status")["details"]["accepted_conn"]) > first + 2,
               5, "accepted conn to grow")
    h.wait_status("/healthcheck", 200)


def test_stopped_fails_then_started_passes(healthd, fpm):
    f = fpm()
    h = healthd(fpm_conf(f))
    h.check("/healthcheck", "fpm:ping", status="pass")
    pid = h.proc.pid
    f.stop()
    h.check("/healthcheck", "fpm:ping", status="fail",
            output_contains="connect: No such file or directory")
    st = h.check("/healthcheck", "fpm:status", status="fail", output_contains="connect: ")
    assert f.status_socket in st["output"]
    h.wait_status("/healthcheck", 503)
    # Node readiness only: the region stays up.
    assert h.get("/healthcheck/region").status == 200
    f.start()
    h.check("/healthcheck", "fpm:ping", status="pass")
    h.check("/healthcheck", "fpm:status", status="pass")
    h.wait_status("/healthcheck", 200)
    assert h.proc.pid == pid and h.proc.poll() is None


def test_saturation_seen_through_status_listen(healthd, fpm):
    f = fpm(max_children=1)
    h = healthd(fpm_conf(f))
    h.check("/healthcheck", "fpm:ping", status="pass")
    f.hold_worker(20)  # the only worker; stopped with php-fpm at teardown
    st = h.check("/healthcheck", "fpm:status", status="fail", output_contains="saturated")
    assert st["details"]["idle_processes"] == "0" and st["details"]["active_processes"] == "1"
    assert st["observedValue"] == 100.0
    ping = h.check("/healthcheck", "fpm:ping", status="fail",
                   output_contains="saturated or unreachable: read: Connection timed out")
    # The whole run, status and ping, ended by the check's deadline.
    assert ping["duration"] <= TIMEOUT_S + 0.25
    # /healthcheck answers from the cache while the check waits on php-fpm.
    slowest = 0.0
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        r = h.get("/healthcheck")
        assert r.status == 503
        slowest = max(slowest, r.elapsed)
    assert slowest < 0.2, f"/healthcheck took {slowest:.3f}s while php-fpm was saturated"
    assert h.get("/healthcheck/region").status == 200


def test_saturation_from_fpm_listen_queue_on_tcp(healthd, fpm):
    # php-fpm measures its listen queue on TCP sockets only (once a second); with the ping off,
    # saturation must come from that number alone.
    f = fpm(max_children=1, listen=f"127.0.0.1:{free_port()}")
    h = healthd(fpm_conf(f, "ping_path =\n"))
    h.check("/healthcheck", "fpm:status", status="pass")
    f.hold_worker(20)
    f.send_and_hold("/ping")  # waits in the kernel's accept queue behind slow.php
    st = h.check("/healthcheck", "fpm:status", status="fail",
                 output_contains="waiting in the listen queue")
    assert int(st["details"]["listen_queue"]) >= 1
    assert "fpm:ping" not in h.get("/healthcheck").json()["checks"]


def test_wrong_ping_response_names_what_was_received(healthd, fpm):
    f = fpm()
    h = healthd(fpm_conf(f, "ping_response = pang\n"))
    e = h.check("/healthcheck", "fpm:ping", status="fail")
    assert e["output"] == 'ping: expected "pang", received "pong"'
    h.check("/healthcheck", "fpm:status", status="pass")
    h.wait_status("/healthcheck", 503)


def test_status_path_not_served_is_a_clear_error(healthd, fpm):
    f = fpm()
    h = healthd(fpm_conf(f, "status_path = /nope\n"))
    e = h.check("/healthcheck", "fpm:status", status="fail")
    assert e["output"].startswith("status: HTTP 404 for /nope: the pool does not serve this path")
    assert "pm.status_path" in e["output"] and "Primary script unknown" in e["output"]
    assert "JSON" not in e["output"]
    h.check("/healthcheck", "fpm:ping", status="pass")


def test_status_path_that_is_a_php_script(healthd, fpm):
    f = fpm()
    script = os.path.join(f.docroot, "hello.php")
    with open(script, "w") as out:
        out.write("<?php echo 'hello';\n")
    h = healthd(fpm_conf(f, f"status_path = {script}\n", status_socket=False))
    e = h.check("/healthcheck", "fpm:status", status="fail")
    assert "not php-fpm's JSON status" in e["output"] and "text/html" in e["output"]


def test_status_on_the_main_socket_does_not_count_itself(healthd, fpm):
    f = fpm(max_children=2, status_listen=False)
    h = healthd(fpm_conf(f))
    e = h.check("/healthcheck", "fpm:status", status="pass")
    # Our own status request occupies a worker while it is served; it is not load.
    wait_until(lambda: entry(h, "fpm:status")["details"]["active_processes"] == "0", 5,
               "an idle pool to show 0 active")
    assert e["details"]["total_processes"] == "2"


def test_affects_none_keeps_node_ready(healthd, fpm):
    f = fpm()
    h = healthd(fpm_conf(f, "affects = none\nping_response = pang\n"))
    e = h.check("/healthcheck", "fpm:ping", status="fail")
    assert e["affects"] == []
    h.wait_status("/healthcheck", 200)


@pytest.mark.parametrize("body, key, words", [
    ("", "socket", "required"),
    ("socket = fpm.internal:9000\n", "socket", "numeric"),
    ("socket = /x.sock\nstatus_path = status\n", "status_path", "must start with /"),
    ("socket = /x.sock\nutilisation_warn = 120%\n", "utilisation_warn", "percentage"),
    ("socket = /x.sock\nlisten_queue_warn = 5\nlisten_queue_fail = 2\n", "listen_queue_fail",
     "below"),
    ("socket = /x.sock\nping_path =\nstatus_path =\n", "status_path", "nothing to check"),
    ("socket = /x.sock\nstatus_path =\nstatus_socket = /s.sock\n", "status_socket", "status_path"),
    ("socket = /x.sock\npong = 1\n", "pong", "unknown key"),
])
def test_config_errors(tmp_path, body, key, words):
    conf = tmp_path / "bad.conf"
    conf.write_text(f"[server]\nlisten = 127.0.0.1:{free_port()}\n[check.fpm]\ntype = fpm\n{body}")
    r = subprocess.run([BINARY, "--test-config", "-c", str(conf)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode != 0
    err = r.stdout + r.stderr
    assert f"[check.fpm] {key}" in err and words in err, err
