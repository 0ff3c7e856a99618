"""The on-call view (issue 15): the text table, the history, `magento-healthd status`, and
`--check` on a terminal.

The failures are real ones: a stopped Redis, a drained node, a read-only MariaDB (svc_*.py
start the real servers on loopback). Terminal output is read through a pty.
"""
import json
import os
import pty
import re
import select
import socket
import subprocess
import threading
import time

import pytest

from harness import BINARY, WRAPPER, free_port, toggle_drain
from svc_redis import RedisServer

PASSWORD = "oncall-Db-pass-9x"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
D_CHECKS = [f"d{n}" for n in range(8)]


@pytest.fixture
def redis_server(tmp_path):
    servers = []

    def make():
        srv = RedisServer(tmp_path / f"redis{len(servers)}").start()
        servers.append(srv)
        return srv
    yield make
    for s in servers:
        s.stop()


def run_cli(args, tty=False, timeout=20, env=None):
    """Runs the binary with `args`; with tty=True its stdout is a pty. Returns (code, out)."""
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    e.update(env or {})
    if not tty:
        r = subprocess.run(WRAPPER + [BINARY] + args, capture_output=True, text=True,
                           timeout=timeout, env=e)
        return r.returncode, r.stdout, r.stderr
    master, slave = pty.openpty()
    p = subprocess.Popen(WRAPPER + [BINARY] + args, stdout=slave, stderr=subprocess.PIPE,
                         env=e)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the pty
                break
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None:
            break
    os.close(master)
    p.wait(timeout)
    return p.returncode, out.decode("utf-8", "replace").replace("\r\n", "\n"), p.stderr.read().decode()


def text_view(h, path="/healthcheck", **kw):
    return h.get(path + ("&" if "?" in path else "?") + "format=text", **kw)


def test_text_view_shows_what_fails_since_when_and_why(healthd, mariadb, redis_server, tmp_path):
    db = mariadb()
    db.add_healthd_user(PASSWORD)
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    srv = redis_server()
    drain = tmp_path / "drain"
    h = healthd(f"[check.db]\ntype = mysql\nhost = 127.0.0.1\nport = {db.port}\nuser = healthd\n"
                f"password_file = {pw}\ninterval = 200ms\ntimeout = 500ms\n"
                f"[check.redis_page_cache]\ntype = redis\nhost = 127.0.0.1\nport = {srv.port}\n"
                "write = no\n"
                "interval = 200ms\ntimeout = 500ms\n"
                f"[check.drain]\ntype = drain\nfile = {drain}\ninterval = 200ms\n")
    h.check("/healthcheck", "db:writable", status="pass")
    h.check("/healthcheck", "redis_page_cache:connectivity", status="pass")
    h.check("/healthcheck", "drain:drain", status="pass")
    srv.stop()
    drain.write_text("maintenance\n")
    db.set_read_only(True)
    h.check("/healthcheck", "redis_page_cache:connectivity", status="fail")
    h.check("/healthcheck", "db:writable", status="fail")
    h.check("/healthcheck", "drain:drain", status="fail")
    r = text_view(h)
    assert r.status == 503 and r.headers["content-type"].startswith("text/plain"), r
    lines = r.body.splitlines()
    assert all(len(line) <= 100 for line in lines), [line for line in lines if len(line) > 100]
    assert "\x1b" not in r.body  # no colour over HTTP
    assert re.match(r"node +fail +test-node: ", lines[0]), lines[0]
    assert re.match(r"region +fail +test-region \(standby\)", lines[1]), lines[1]
    assert lines[2].startswith("standby"), lines[2]
    # Names are never cut: the CHECK column fits redis_page_cache:connectivity (29 characters).
    rows = {line.split()[1]: line for line in lines if re.match(r"(pass|warn|fail) ", line)}
    assert rows["drain:drain"].startswith("fail") and "draining" in rows["drain:drain"]
    cache = rows["redis_page_cache:connectivity"]
    assert cache.startswith("fail") and "connect" in cache, cache
    assert rows["db:writable"].startswith("fail") and "read-only" in rows["db:writable"]
    assert rows["db:connectivity"].startswith("pass") and " ms " in rows["db:connectivity"]
    # Each row says how long the measurement has been in its status: "0s", "3s", "1m02s".
    assert re.search(r" \d+(s|m\d\ds) ", rows["drain:drain"]), rows["drain:drain"]
    hist = lines[lines.index(next(x for x in lines if x.startswith("HISTORY"))) + 1:]
    assert any("drain:drain" in x and "pass     -> fail" in x for x in hist), hist
    # The region and standby paths serve the same view with their own status code.
    assert text_view(h, "/healthcheck/region").status == 503
    assert h.get("/healthcheck/region?role=standby&format=text").headers["content-type"].startswith(
        "text/plain")
    r = h.get("/healthcheck", headers={"Accept": "text/plain"})
    assert r.headers["content-type"].startswith("text/plain") and r.body.startswith("node")
    r = h.get("/healthcheck", headers={"Accept": "text/plain, application/json"})
    assert r.headers["content-type"].startswith("application/health+json")
    assert PASSWORD not in text_view(h).body + h.log()


def test_public_clients_get_no_text_view(healthd, tmp_path):
    h = healthd(f"[check.drain]\ntype = drain\nfile = {tmp_path}/drain\ninterval = 200ms\n",
                server_extra="details_from = 127.0.0.1/32\n")
    h.wait_status("/healthcheck", 200)
    for path, headers in (("/healthcheck?format=text", {}), ("/healthcheck", {"Accept": "text/plain"}),
                          ("/healthcheck/region?format=text", {}),
                          ("/healthcheck/region?role=standby&format=text", {})):
        r = h.get(path, headers=headers, source="127.0.0.2")
        assert r.headers["content-type"].startswith("application/health+json"), (path, r)
        body = r.json()
        assert "history" not in body and "output" not in json.dumps(body), body


def test_history_order_overflow_and_since_times(healthd, tmp_path):
    drain = tmp_path / "drain"
    body = "".join(f"[check.d{n}]\ntype = drain\nfile = {drain}\ninterval = 50ms\n" for n in range(8))
    body += f"[check.steady]\ntype = drain\nfile = {tmp_path}/never\ninterval = 50ms\n"
    h = healthd(body)
    first = h.check("/healthcheck", "steady:drain", status="pass")
    steady_since = first["since"]
    for n in range(8):  # every first result in before the toggling starts
        h.check("/healthcheck", f"d{n}:drain", status="pass")
    toggle_drain(h, drain, D_CHECKS, 4)
    hist = h.get("/healthcheck").json()["history"]
    # Newest first: the last toggle (fail -> pass) of the d* checks leads.
    assert hist[0]["from"] == "fail" and hist[0]["to"] == "pass", hist[:3]
    times = [e["time"] for e in hist]
    assert times == sorted(times, reverse=True), times
    toggle_drain(h, drain, D_CHECKS, 12)  # 9 first results + 16 x 8 transitions: well past 100
    body = h.get("/healthcheck").json()
    assert len(body["history"]) == 100 and body["history_total"] == 9 + 16 * 8, body["history_total"]
    assert not any(e["check"] == "steady:drain" for e in body["history"])  # pushed out
    steady = body["checks"]["steady:drain"][0]
    assert steady["since"] == steady_since, steady  # kept though its transition is gone
    text = text_view(h).body
    assert "HISTORY (newest first, 100 of 137 since start; memory only)" in text
    metrics = h.get("/metrics").body
    assert re.search(r'magento_healthd_check_last_transition_timestamp_seconds\{check="steady",'
                     r'measurement="drain",type="drain"\} \d+\.\d+', metrics)


def status_config(tmp_path, port, node="test-node"):
    path = tmp_path / f"status-{port}-{node}.conf"
    path.write_text(f"[server]\nlisten = 127.0.0.1:{port}\nnode = {node}\n")
    return str(path)


def test_status_command_exit_codes_and_output(healthd, tmp_path):
    drain = tmp_path / "drain"
    h = healthd(f"[check.drain]\ntype = drain\nfile = {drain}\ninterval = 200ms\n"
                f"[check.disk]\ntype = disk\npath = {tmp_path}\nwrite_probe = no\ninterval = 200ms\n"
                "space_warn = 100%\nspace_fail = 0%\n", start=False)
    h.start()
    h.check("/healthcheck", "disk:free", status="warn")
    h.check("/healthcheck", "drain:drain", status="pass")
    conf = status_config(tmp_path, h.port)
    code, out, err = run_cli(["status", "-c", conf])
    assert code == 1, (code, out, err)  # warn: the disk is past space_warn
    assert out.startswith("node") and "\x1b" not in out, out
    # A pty: colour on the status words, unless NO_COLOR.
    code, out, err = run_cli(["status", "-c", conf], tty=True)
    assert code == 1 and "\x1b[1;33mwarn\x1b[0m" in out, repr(out[:400])
    assert ANSI.sub("", out).startswith("node"), out
    code, out, _ = run_cli(["status", "-c", conf], tty=True, env={"NO_COLOR": "1"})
    assert code == 1 and "\x1b" not in out
    code, out, _ = run_cli(["status", "-c", conf, "--json"])
    assert code == 1 and json.loads(out)["checks"]["disk:free"][0]["status"] == "warn"
    drain.write_text("x\n")
    h.check("/healthcheck", "drain:drain", status="fail")
    code, out, _ = run_cli(["status", "-c", conf])
    assert code == 2 and "draining" in out
    # A config that names another node: it says so.
    code, _, err = run_cli(["status", "-c", status_config(tmp_path, h.port, node="web-9")])
    assert code == 2 and "a different daemon answered" in err and "web-9" in err, err
    drain.unlink()
    h.stop()
    h2 = healthd(f"[check.drain]\ntype = drain\nfile = {drain}\ninterval = 200ms\n")
    h2.wait_status("/healthcheck", 200)
    code, out, _ = run_cli(["status", "-c", status_config(tmp_path, h2.port)])
    assert code == 0 and out.startswith("node     pass"), out
    # Proxy settings in the environment are not used: the token would go to the proxy.
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    code, out, err = run_cli(["status", "-c", status_config(tmp_path, h2.port)],
                             env={"http_proxy": dead_proxy, "ALL_PROXY": dead_proxy})
    assert code == 0 and out.startswith("node     pass"), (out, err)
    # --timeout 0 would mean "no limit" to libcurl: refused.
    code, _, err = run_cli(["status", "-c", status_config(tmp_path, h2.port), "--timeout", "0s"])
    assert code == 64 and "--timeout 0s: must be at least 1ms" in err, err


def test_status_command_is_bounded_when_the_daemon_cannot_answer(tmp_path):
    closed = free_port()
    code, out, err = run_cli(["status", "-c", status_config(tmp_path, closed)])
    assert code == 3 and "cannot reach the daemon" in err and err.count("\n") == 1, err
    # A port that accepts and never answers: bounded by --timeout.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass
    t = threading.Thread(target=accept)
    t.start()
    try:
        t0 = time.monotonic()
        code, out, err = run_cli(["status", "-c", status_config(tmp_path, srv.getsockname()[1]),
                                  "--timeout", "700ms"])
        took = time.monotonic() - t0
        assert code == 3 and "cannot reach the daemon" in err, err
        assert took < 0.7 + 1.5, took
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        srv.close()


def test_check_mode_prints_a_table_on_a_terminal_and_json_otherwise(tmp_path):
    drain = tmp_path / "drain"
    drain.write_text("x\n")
    conf = tmp_path / "check.conf"
    conf.write_text(f"[server]\nlisten = 127.0.0.1:{free_port()}\nnode = cli-node\n"
                    f"[check.drain]\ntype = drain\nfile = {drain}\n")
    code, out, _ = run_cli(["--check", "-c", str(conf)], tty=True)
    assert code == 2 and ANSI.sub("", out).startswith("node     fail  cli-node"), repr(out)
    assert "\x1b[1;31mfail\x1b[0m" in out
    code, out, _ = run_cli(["--check", "--json", "-c", str(conf)], tty=True)
    assert code == 2 and json.loads(out)["status"] == "fail"
    code, out, _ = run_cli(["--check", "-c", str(conf)])
    assert code == 2 and json.loads(out)["status"] == "fail"
    drain.unlink()
    code, out, _ = run_cli(["--check", "-c", str(conf)], tty=True, env={"NO_COLOR": "1"})
    assert code == 0 and out.startswith("node     pass") and "\x1b" not in out, repr(out)
