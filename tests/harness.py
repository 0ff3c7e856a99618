"""Test harness: free ports, polling with deadlines, and a real magento-healthd process.

Every test that waits does so with wait_until() and a deadline, never a bare sleep.
"""
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import textwrap
import time

BINARY = os.environ.get("MH_BINARY", os.path.join(os.path.dirname(__file__), "..", "build", "magento-healthd"))
# A command to run the daemon under, e.g. "valgrind --error-exitcode=99 ..." (see scripts/test).
WRAPPER = os.environ.get("MH_WRAPPER", "").split()
UNDER_VALGRIND = any(os.path.basename(w) == "valgrind" for w in WRAPPER)


# Ports for the services the tests start come from below the kernel's ephemeral range
# (net.ipv4.ip_local_port_range, 32768-60999 by default). A port the kernel picked with bind(0)
# is also what it hands out as the local port of outgoing connections, and with the suite
# running two modules at once one of those took a broker's TLS port before it could listen.
_PORTS = (20000, 32767)


def free_port(host="127.0.0.1"):
    """A TCP port nothing listens on right now (bound and released), outside the ephemeral
    range, picked at random so that parallel test processes rarely try the same one."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(200):
        port = random.randint(*_PORTS)
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port in {_PORTS} on {host}")


def terminate(proc, sig=signal.SIGTERM, timeout=10.0):
    """Asks a process to stop with `sig`, then SIGKILLs it if it has not gone within `timeout`.
    Returns its exit code; None-safe and idempotent."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def notify_socket(tmp_path):
    """A bound sd_notify socket (NOTIFY_SOCKET) with a short read timeout; returns (sock, path)."""
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(0.05)
    return s, path


class Notifications:
    """Reads sd_notify messages as they come, with the time each one arrived."""

    def __init__(self, sock):
        self.sock = sock
        self.messages = []

    def drain(self):
        while True:
            try:
                self.messages.append((time.monotonic(), self.sock.recv(4096).decode()))
            except (socket.timeout, BlockingIOError):
                return self.messages

    def first(self, text, after=0.0):
        self.drain()
        return next((t for t, m in self.messages if m == text and t >= after), None)

    def times(self, text):
        self.drain()
        return [t for t, m in self.messages if m == text]


def wait_until(predicate, timeout=10.0, what="condition", interval=0.02):
    """Polls predicate() until it returns a truthy value; fails the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except (OSError, http.client.HTTPException, ValueError) as e:
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def toggle_drain(h, drain, checks, times):
    """Drains (creates `drain`) and undrains, `times` in all, each time until every drain check
    in `checks` (names) shows it in the detailed view."""
    for i in range(times):
        if i % 2 == 0:
            with open(drain, "w") as f:
                f.write("draining\n")
        else:
            os.unlink(drain)
        want = "fail" if i % 2 == 0 else "pass"

        def seen():
            entries = h.get("/healthcheck", timeout=2).json()["checks"]
            return all(entries[f"{name}:drain"][0]["status"] == want for name in checks)
        wait_until(seen, 5, f"toggle {i}: {want}")


def entry(h, name, path="/healthcheck"):
    """The detailed entry of measurement `name` ("check:measurement") on `path`, as it is now."""
    return h.get(path).json()["checks"][name][0]


def newer_result(h, name, than):
    """The entry for `name` once a run later than the entry `than` has posted, else None."""
    e = entry(h, name)
    return e if e["time"] != than["time"] else None


def all_bodies(h):
    """Every readiness body a client can get, concatenated: for checks that nothing leaks."""
    return "".join(h.get(p).body for p in ["/healthcheck", "/healthcheck/region",
                                           "/healthcheck/live"])


class Response:
    def __init__(self, status, headers, body, elapsed):
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsed = elapsed

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


def http_get(host, port, path, method="GET", headers=None, timeout=5.0, source=None, body=None):
    """One request on a fresh connection (as the ALB does). `source` binds the client address,
    e.g. "127.0.0.2" to look like a client outside details_from."""
    start = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request(method, path, headers=headers or {}, body=body)
        r = conn.getresponse()
        body = r.read().decode("utf-8", "replace")
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, body,
                        time.monotonic() - start)
    finally:
        conn.close()


def wait_http(host, port, path, status, source=None, timeout=10.0):
    """Polls GET path until it answers `status`; returns that response. Use it for the public
    view, which is re-rendered just after the detailed one changes."""
    def ok():
        r = http_get(host, port, path, source=source)
        return r if r.status == status else None
    return wait_until(ok, timeout, f"{path} -> {status} from {source or 'the default source'}")


class Healthd:
    """A magento-healthd process with its own config file, port and log."""

    def __init__(self, workdir, config_body, env=None, listen_host="127.0.0.1", server_extra="",
                 args=None):
        self.workdir = workdir
        self.host = listen_host
        self.port = free_port(listen_host)
        self.config_path = os.path.join(workdir, "healthd.conf")
        self.log_path = os.path.join(workdir, "healthd.log")
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.args = args or []
        self.prefix = []  # a command the daemon runs under, e.g. nsenter into a namespace
        self.proc = None
        self.write_config(config_body, server_extra)

    def listen_spec(self):
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"{h}:{self.port}"

    def write_config(self, config_body, server_extra=""):
        """Writes [server] (listen, node, region, shutdown_delay defaults, each overridable by a
        line in server_extra) followed by config_body."""
        extra = textwrap.dedent(server_extra)
        given = {line.split("=")[0].strip() for line in extra.splitlines() if "=" in line}
        defaults = {"listen": self.listen_spec(), "node": "test-node", "region": "test-region",
                    "shutdown_delay": "0s"}
        text = "[server]\n" + "".join(f"{k} = {v}\n" for k, v in defaults.items() if k not in given)
        text += extra + "\n" + textwrap.dedent(config_body)
        with open(self.config_path, "w") as f:
            f.write(text)

    def start(self, wait_ready=False, timeout=10.0):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.prefix + WRAPPER + [BINARY, "-c", self.config_path] + self.args,
                                     stdout=self.logf, stderr=subprocess.STDOUT, env=self.env)
        wait_until(lambda: self.poll_alive() and self.get("/healthcheck/live").status == 200,
                   timeout, "magento-healthd to serve /healthcheck/live")
        if wait_ready:
            self.wait_status("/healthcheck", 200, timeout)
        return self

    def poll_alive(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"magento-healthd exited with {self.proc.returncode}: {self.log()}")
        return True

    def get(self, path, **kw):
        return http_get(self.host, self.port, path, **kw)

    def wait_status(self, path, status, timeout=10.0, body_contains=None, headers=None):
        def ok():
            r = self.get(path, headers=headers)
            if r.status == status and (body_contains is None or body_contains in r.body):
                return r
            return None
        return wait_until(ok, timeout, f"{path} -> {status} {body_contains or ''}")

    def check(self, path, name, timeout=10.0, status=None, output_contains=None):
        """Waits until detailed `path` shows check entry `name` with the given status/output."""
        def ok():
            body = self.get(path).json()
            entry = body.get("checks", {}).get(name)
            if not entry:
                return None
            e = entry[0]
            if "time" not in e:  # no result yet ("starting")
                return None
            if status is not None and e.get("status") != status:
                return None
            if output_contains is not None and output_contains not in e.get("output", ""):
                return None
            return e
        return wait_until(ok, timeout, f"check {name} status={status} output~{output_contains!r}")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        """SIGTERM and wait. A daemon that stops cleanly exits 0; anything else (a crash, or a
        sanitizer or valgrind finding, which change the exit code) fails the test."""
        if not self.proc:
            return
        was_running = self.proc.poll() is None
        if was_running:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        rc, self.proc = self.proc.returncode, None
        if was_running and rc == -signal.SIGTERM and UNDER_VALGRIND:
            # Seen twice in about 200 short runs, only under valgrind and only with other tests
            # loading the CPU: the process ends by the default action of a SIGTERM that every
            # thread blocks and the main loop waits for with sigtimedwait(). Never seen natively
            # (0 in 100 under the same load), where stages 1 and 2 keep this check strict. The
            # run's memcheck verdict is lost; say so instead of failing the stage.
            print(f"note: valgrind ended magento-healthd by SIGTERM's default action ({self.workdir})")
            return
        if was_running and rc != 0:
            raise AssertionError(f"magento-healthd exited with {rc} on SIGTERM: {self.log()[-3000:]}")


def run_check_mode(config_path, env=None, timeout=30):
    """Runs `magento-healthd --check -c FILE`; returns CompletedProcess."""
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(WRAPPER + [BINARY, "--check", "-c", config_path], capture_output=True, text=True,
                          timeout=timeout, env=e)
