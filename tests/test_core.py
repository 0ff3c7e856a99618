"""Core integration tests: endpoints, details gating, drain, lifecycle, --check and bad config.

Every test runs the real magento-healthd binary on a free loopback port.
"""
import http.client
import json
import os
import signal
import subprocess
import time

import pytest

from harness import BINARY, WRAPPER, http_get, run_check_mode, wait_http, wait_until

OUTSIDER = "127.0.0.2"  # a loopback address outside details_from = 127.0.0.1/32


def drain_conf(tmp_path, interval="100ms"):
    return f"""
        [check.drain]
        type = drain
        file = {tmp_path}/drain
        interval = {interval}
        """


GATED = "details_from = 127.0.0.1/32\n"


def test_ready_body_and_headers(healthd, tmp_path):
    h = healthd(drain_conf(tmp_path), server_extra=GATED)
    r = h.wait_status("/healthcheck", 200)
    assert r.body.startswith('{"status":"pass"')
    assert r.headers["content-type"] == "application/health+json"
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["node"] == "test-node" and body["region"] == "test-region"
    entry = body["checks"]["drain:drain"][0]
    assert entry["status"] == "pass" and entry["output"] == "not draining"
    assert entry["componentType"] == "system" and entry["affects"] == ["node"]
    assert "time" in entry and entry["age"] >= 0
    # The alias serves the same view.
    assert h.get("/healthcheck/node").json()["checks"].keys() == body["checks"].keys()
    live = h.get("/healthcheck/live")
    assert live.status == 200 and live.body.startswith('{"status":"pass"')


def test_head_same_status_no_body(healthd, tmp_path):
    h = healthd(drain_conf(tmp_path))
    h.wait_status("/healthcheck", 200)
    r = h.get("/healthcheck", method="HEAD")
    assert r.status == 200 and r.body == ""
    assert r.headers["content-type"] == "application/health+json"
    open(tmp_path / "drain", "w").close()
    h.wait_status("/healthcheck", 503)
    assert h.get("/healthcheck", method="HEAD").status == 503
    assert h.get("/healthcheck/live", method="HEAD").status == 200


def test_404_and_405(healthd, tmp_path):
    h = healthd(drain_conf(tmp_path))
    for path in ["/", "/healthcheck/", "/healthcheck/nope", "/health_check.php", "/metricsx"]:
        assert h.get(path).status == 404, path
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]:
        r = h.get("/healthcheck", method=method)
        assert r.status == 405, method
        assert r.headers["allow"] == "GET, HEAD"


def test_get_with_body_is_rejected(healthd, tmp_path):
    h = healthd(drain_conf(tmp_path))
    r = h.get("/healthcheck", body=b"x" * 100, headers={"Content-Type": "text/plain"})
    assert r.status == 400


def test_details_gated_by_cidr(healthd, tmp_path):
    h = healthd(drain_conf(tmp_path), server_extra=GATED)
    h.wait_status("/healthcheck", 200)
    inside = h.get("/healthcheck").json()
    assert inside["checks"]["drain:drain"][0]["output"] == "not draining"
    outside = wait_http(h.host, h.port, "/healthcheck", 200, source=OUTSIDER)
    assert outside.body.startswith('{"status":"pass"')
    assert outside.json()["checks"] == {"drain:drain": [{"status": "pass"}]}
    assert "output" not in outside.body and "not draining" not in outside.body
    # Failing: the outsider still learns only the statuses.
    open(tmp_path / "drain", "w").close()
    h.wait_status("/healthcheck", 503)
    outside = wait_http(h.host, h.port, "/healthcheck", 503, source=OUTSIDER)
    assert outside.json()["checks"] == {"drain:drain": [{"status": "fail"}]}
    assert "draining" not in outside.body


def test_long_details_from_over_repeated_keys(healthd, tmp_path):
    """20 networks do not fit on one config line (inih reads at most 200 bytes): repeated keys and
    an indented continuation line add up to one list, and 127.0.0.1, the last of them, gets
    details while 127.0.0.2 does not."""
    nets = [f"10.{i}.0.0/16" for i in range(19)] + ["127.0.0.1/32"]
    lines = [f"details_from = {', '.join(nets[i:i + 6])}\n" for i in range(0, 18, 6)]
    lines.append(f"details_from = {nets[18]},\n    {nets[19]}\n")
    h = healthd(drain_conf(tmp_path), server_extra="".join(lines))
    inside = h.wait_status("/healthcheck", 200).json()
    assert inside["checks"]["drain:drain"][0]["output"] == "not draining"
    outside = wait_http(h.host, h.port, "/healthcheck", 200, source=OUTSIDER)
    assert outside.json()["checks"] == {"drain:drain": [{"status": "pass"}]}
    r = subprocess.run([BINARY, "--test-config", "-c", h.config_path], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r


def test_details_gated_by_token(healthd, tmp_path):
    token = "tok-5ecret-9f3a1"
    (tmp_path / "token").write_text(token + "\n")
    h = healthd(drain_conf(tmp_path),
                server_extra=f"details_from = 127.0.0.1/32\ndetails_token_file = {tmp_path}/token\n")
    h.wait_status("/healthcheck", 200)
    ok = http_get(h.host, h.port, "/healthcheck", source=OUTSIDER,
                  headers={"Authorization": f"Bearer {token}"})
    assert ok.json()["checks"]["drain:drain"][0]["output"] == "not draining"
    for bad in [f"Bearer {token}x", f"Bearer {token[:-1]}", "Bearer ", token, f"Basic {token}"]:
        r = http_get(h.host, h.port, "/healthcheck", source=OUTSIDER, headers={"Authorization": bad})
        assert "output" not in r.body, bad
    assert token not in h.log()


def test_drain_flip(healthd, tmp_path):
    h = healthd(drain_conf(tmp_path))
    h.wait_status("/healthcheck", 200)
    open(tmp_path / "drain", "w").close()
    r = h.wait_status("/healthcheck", 503)
    assert r.json()["checks"]["drain:drain"][0]["output"].startswith("draining")
    # Draining is a node matter: live stays up.
    assert h.get("/healthcheck/live").status == 200
    os.unlink(tmp_path / "drain")
    h.wait_status("/healthcheck", 200)
    assert "drain:drain: pass -> fail: draining" in h.log()
    assert "drain:drain: fail -> pass" in h.log()


def test_non_utf8_drain_file_keeps_its_output(healthd, tmp_path):
    """A drain file whose name is not UTF-8 (Latin-1 "café"): the output is still shown, per check
    and top-level, with the bad byte as U+FFFD, and the body is valid UTF-8 JSON."""
    drain = os.fsencode(tmp_path) + b"/caf\xe9"
    h = healthd("[check.drain]\ntype = drain\nfile = @FILE@\ninterval = 100ms\n", start=False)
    with open(h.config_path, "rb") as f:
        conf = f.read()
    with open(h.config_path, "wb") as f:
        f.write(conf.replace(b"@FILE@", drain))
    h.start()
    h.wait_status("/healthcheck", 200)
    open(drain, "w").close()
    h.wait_status("/healthcheck", 503)
    conn = http.client.HTTPConnection(h.host, h.port, timeout=5)
    try:
        conn.request("GET", "/healthcheck")
        body = json.loads(conn.getresponse().read().decode("utf-8"))  # strict: no bad bytes
    finally:
        conn.close()
    want = f"draining: {tmp_path}/caf\ufffd exists"
    assert body["checks"]["drain:drain"][0]["output"] == want, body
    assert body["output"] == "drain:drain fail: " + want, body


def test_magento_maintenance_flag(healthd, tmp_path):
    root = tmp_path / "magento"
    (root / "var").mkdir(parents=True)
    h = healthd(drain_conf(tmp_path), server_extra=f"magento_root = {root}\n")
    h.wait_status("/healthcheck", 200)
    (root / "var" / ".maintenance.flag").write_text("")
    r = h.wait_status("/healthcheck", 503)
    assert "maintenance" in r.json()["checks"]["drain:drain"][0]["output"]
    os.unlink(root / "var" / ".maintenance.flag")
    h.wait_status("/healthcheck", 200)


def test_hysteresis_fall_and_rise(healthd, tmp_path):
    h = healthd(f"""
        [check.drain]
        type = drain
        file = {tmp_path}/drain
        interval = 250ms
        fall = 5
        rise = 4
        """)
    h.wait_status("/healthcheck", 200)

    def entry():
        return h.get("/healthcheck").json()["checks"]["drain:drain"][0]

    open(tmp_path / "drain", "w").close()
    # fall = 5: the first failing runs are seen (output) while the status still holds at pass.
    held = wait_until(lambda: (e := entry())["output"].startswith("draining") and
                      e["status"] == "pass" and e, 5, "a failing run held at pass")
    assert held
    h.wait_status("/healthcheck", 503)
    os.unlink(tmp_path / "drain")
    # rise = 4: the first passing runs are seen while the status still holds at fail.
    wait_until(lambda: (e := entry())["output"] == "not draining" and e["status"] == "fail", 5,
               "a passing run held at fail")
    h.wait_status("/healthcheck", 200)
    assert h.log().count("drain:drain: pass -> fail") == 1
    assert h.log().count("drain:drain: fail -> pass") == 1


def test_sigterm_fails_readiness_then_exits_after_delay(healthd, tmp_path):
    h = healthd(drain_conf(tmp_path), server_extra="shutdown_delay = 1500ms\n")
    h.wait_status("/healthcheck", 200)
    t0 = time.monotonic()
    h.signal(signal.SIGTERM)
    r = h.wait_status("/healthcheck", 503, timeout=1.0)
    assert r.json()["output"] == "shutting down"
    assert h.get("/healthcheck/live").status == 200  # still serving during the delay
    rc = h.proc.wait(10)
    elapsed = time.monotonic() - t0
    assert rc == 0
    # valgrind's leak check at exit takes a while of its own.
    assert 1.4 <= elapsed < (5.0 if not WRAPPER else 15.0), elapsed


def test_sighup_reload_good_and_bad(healthd, tmp_path):
    h = healthd(drain_conf(tmp_path))
    h.wait_status("/healthcheck", 200)
    # Good reload: the new region shows up, without going back to "starting".
    with open(h.config_path) as f:
        text = f.read().replace("region = test-region", "region = eu-west-1")
    with open(h.config_path, "w") as f:
        f.write(text)
    h.signal(signal.SIGHUP)
    wait_until(lambda: h.get("/healthcheck").json()["region"] == "eu-west-1", 5, "reloaded region")
    # The new bodies are published just before "reloaded" is logged: poll.
    wait_until(lambda: "reloaded" in h.log(), 5, "reloaded in the log")
    # The old drain check was idle: stopping it is immediate, nothing may look stuck.
    assert "still stuck" not in h.log()
    # Bad reload: logged and rejected; the old configuration keeps serving.
    with open(h.config_path, "a") as f:
        f.write("\n[check.broken]\ntype = drain\nbogus_key = 1\n")
    h.signal(signal.SIGHUP)
    wait_until(lambda: "reload rejected" in h.log(), 5, "reload rejected in the log")
    assert "bogus_key" in h.log() and "unknown key" in h.log()
    r = h.get("/healthcheck")
    assert r.status == 200 and r.json()["region"] == "eu-west-1"
    assert h.proc.poll() is None


def write_conf(tmp_path, body, name="check.conf"):
    path = tmp_path / name
    path.write_text("[server]\nnode = n1\nregion = r1\n" + body)
    return str(path)


def test_check_mode_exit_codes(tmp_path):
    ok = write_conf(tmp_path, f"[check.d]\ntype = drain\nfile = {tmp_path}/drain\n")
    r = run_check_mode(ok)
    assert r.returncode == 0, r
    import json
    report = json.loads(r.stdout)
    assert report["status"] == "pass" and report["checks"]["d:drain"][0]["output"] == "not draining"
    assert report["node_readiness"]["status"] == "pass"

    warn = write_conf(tmp_path, name="warn.conf", body=f"[check.disk]\ntype = disk\npath = {tmp_path}\n"
                                "space_warn = 100%\nspace_fail = 0%\nwrite_probe = no\n")
    r = run_check_mode(warn)
    assert r.returncode == 1, r
    assert json.loads(r.stdout)["status"] == "warn"

    open(tmp_path / "drain", "w").close()
    r = run_check_mode(ok)
    assert r.returncode == 2, r
    assert "draining" in r.stdout

    r = run_check_mode(str(tmp_path / "missing.conf"))
    assert r.returncode == 3 and "missing.conf" in r.stderr


@pytest.mark.parametrize("body,needle", [
    ("[server]\nlisten = 127.0.0.1:8642\nbogus = 1\n[check.d]\ntype = drain\n",
     ":3: [server] bogus: unknown key"),
    ("[server]\n[check.d]\ntype = drain\ninterval = 2\n",
     ":4: [check.d] interval: invalid value \"2\""),
    ("[check.d]\ntype = drain\n\n[check.d]\ntype = drain\n",
     ":4: [check.d]: duplicate check name (first defined on line 1)"),
    ("[check.d]\ntype = nosuch\n", ":2: [check.d] type: unknown check type \"nosuch\""),
    ("[check.d]\ninterval = 1s\n", ":1: [check.d]: missing key \"type\""),
    ("[checks]\ntype = drain\n", ":1: [checks]: unknown section"),
    ("[server]\nlisten = 127.0.0.1\n[check.d]\ntype = drain\n", ":2: [server] listen:"),
    ("[server]\ndetails_token = hunter2-secret\n[check.d]\ntype = drain\n",
     ":2: [server] details_token: secrets are not accepted inline"),
    ("[check.x]\ntype = disk\npath = /tmp\nspace_fail = 120%\n", ":4: [check.x] space_fail:"),
    ("[server]\n", ":1: no [check.NAME] section"),
    ("[check.d]\ntype = drain\ntype = disk\n", ":3: [check.d] type: given twice"),
    # A healthy check would turn stale between runs: interval + timeout is the floor.
    ("[check.d]\ntype = drain\ninterval = 3s\ntimeout = 100ms\nmax_age = 1s\n",
     ":5: [check.d] max_age: must be at least interval + timeout"),
    ("garbage line\n", ":1: syntax error"),
])
def test_bad_config_is_reported(tmp_path, body, needle):
    path = tmp_path / "bad.conf"
    path.write_text(body)
    r = subprocess.run([BINARY, "--test-config", "-c", str(path)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode != 0
    assert str(path) + needle in r.stderr, r.stderr
    assert "hunter2-secret" not in r.stderr
    # The daemon itself refuses to start on it, too.
    r = subprocess.run([BINARY, "-c", str(path)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and needle in r.stderr


def test_missing_config_file(tmp_path):
    r = subprocess.run([BINARY, "-c", str(tmp_path / "nope.conf")], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 1
    assert "nope.conf" in r.stderr and "No such file" in r.stderr


def test_cli_flags(tmp_path):
    r = subprocess.run([BINARY, "--version"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and r.stdout.startswith("magento-healthd ")
    r = subprocess.run([BINARY, "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "--check" in r.stdout and "--test-config" in r.stdout
    r = subprocess.run([BINARY, "--bogus"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 64
    ok = write_conf(tmp_path, "[check.d]\ntype = drain\n")
    r = subprocess.run([BINARY, "--test-config", "-c", ok], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0 and "OK" in r.stdout


def test_listen_conflict_is_a_clear_error(healthd, tmp_path):
    h = healthd(drain_conf(tmp_path))
    r = subprocess.run([BINARY, "-c", h.config_path], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert "cannot listen" in r.stderr and "Address already in use" in r.stderr


def test_long_interval_still_reports_within_the_warm_up_cap(healthd, tmp_path):
    """The random warm-up is capped at 5 s: a check with a 60 s interval still reports (and
    readiness leaves "starting") within seconds, not up to a minute later."""
    h = healthd(f"[check.drain]\ntype = drain\nfile = {tmp_path}/drain\ninterval = 60s\n")
    h.wait_status("/healthcheck", 200, timeout=8)
