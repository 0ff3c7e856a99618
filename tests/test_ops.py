"""Operations: the systemd units, `meson install` and the man pages.

The build directory is the one `meson test` runs in: the directory of $MH_BINARY. The tests install
it into a temporary --destdir and check the tree. They also check the installed units with
`systemd-analyze verify` and `systemd-analyze security --offline=true`. Neither command needs
systemd as PID 1.
"""
import configparser
import json
import os
import re
import shutil
import stat
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(HERE)
BINARY = os.path.abspath(os.environ.get("MH_BINARY", os.path.join(SOURCE_ROOT, "build", "magento-healthd")))
BUILD_DIR = os.path.dirname(BINARY)
SAMPLE = os.path.join(SOURCE_ROOT, "magento-healthd.conf.sample")
DEFAULT_CONFIG = os.path.join(SOURCE_ROOT, "magento-healthd.conf.default")
NGINX_SNIPPET = os.path.join(SOURCE_ROOT, "nginx", "magento-healthd.conf")

MAX_EXPOSURE = 2.0
# Check types whose keys magento-healthd.conf(5) documents in full.
DOCUMENTED_TYPES = {"disk", "drain", "mysql", "redis", "fpm", "opensearch", "amqp"}
COMMON_CHECK_KEYS = {"type", "interval", "timeout", "max_age", "rise", "fall", "affects",
                     "enabled"}


def need_tool(name):
    """The path of a tool the test needs. CI installs them all (scripts/install-deps), so there a
    missing tool is a failure. Elsewhere the test is skipped, and the reason names the tool."""
    path = shutil.which(name)
    if path:
        return path
    reason = f"{name} is not installed (Debian: see scripts/install-deps)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def run(cmd, **kw):
    env = dict(os.environ, SYSTEMD_COLORS="0", SYSTEMD_PAGER="", PAGER="cat", LC_ALL="C.UTF-8")
    env.update(kw.pop("env", {}))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, **kw)


class Tree:
    """A `meson install --destdir` of the build directory."""

    def __init__(self, destdir, plan):
        self.destdir = destdir
        self.plan = plan  # source or built file -> installed path (without destdir)

    def dest(self, suffix):
        """The installed path (without destdir) of the one planned file whose source ends with
        `suffix`."""
        hits = [d for s, d in self.plan.items() if s.endswith(suffix)]
        assert len(hits) == 1, f"meson installs {len(hits)} files from *{suffix}: {self.plan}"
        return hits[0]

    def path(self, installed):
        return os.path.join(self.destdir, installed.lstrip("/"))

    def read(self, installed):
        with open(self.path(installed), encoding="utf-8") as f:
            return f.read()

    def config(self):
        """The installed path of the configuration, which an install script writes (it is not
        in meson's plan): the file the service's ExecStart names."""
        unit = unit_settings(self.read(self.dest("magento-healthd.service")))
        (exec_start,) = unit[("Service", "ExecStart")]
        return exec_start.split()[2]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    meson = need_tool("meson")
    assert os.path.isfile(os.path.join(BUILD_DIR, "build.ninja")), \
        f"{BUILD_DIR} is not a meson build directory (MH_BINARY={BINARY})"
    r = run([meson, "introspect", "--installed", BUILD_DIR])
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    destdir = str(tmp_path_factory.mktemp("destdir"))
    # --no-rebuild: `meson test` has built everything already, and this runs next to other tests.
    r = run([meson, "install", "-C", BUILD_DIR, "--no-rebuild", "--destdir", destdir])
    assert r.returncode == 0, f"meson install failed:\n{r.stdout}\n{r.stderr}"
    return Tree(destdir, plan)


def unit_settings(text):
    """A unit file's settings as {(section, key): [values]}. Repeated keys keep every value."""
    out, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault((section, key.strip()), []).append(value.strip())
    return out


# ---- the install tree ----

def test_binary_is_installed_and_runs(tree):
    binary = tree.path(tree.dest(os.sep + "magento-healthd"))
    assert re.search(r"/s?bin/magento-healthd$", binary), binary
    mode = os.stat(binary).st_mode
    assert stat.S_ISREG(mode) and mode & stat.S_IXUSR and mode & stat.S_IXOTH, oct(mode)
    r = run([binary, "--version"])
    assert r.returncode == 0 and r.stdout.startswith("magento-healthd "), r


def test_units_are_installed_in_the_system_unit_dir(tree):
    for name in ("magento-healthd.service", "magento-healthd.socket"):
        dest = tree.dest(name)
        assert os.path.dirname(dest).endswith("/systemd/system"), dest
        assert os.path.isfile(tree.path(dest)), f"{dest} missing from the install tree"
        left = re.findall(r"@[A-Za-z_]+@", tree.read(dest))
        assert not left, f"{dest} has unconfigured variables: {left}"


def loads_with_its_credentials(binary, config_path, tmp_path):
    """Whether a config loads as it is, given the credentials (LoadCredential=) and environment
    variables its active NAME_file and NAME_env keys name. Returns the CompletedProcess."""
    creds = tmp_path / "credentials"
    creds.mkdir(exist_ok=True)
    env = {"CREDENTIALS_DIRECTORY": str(creds)}
    with open(config_path, encoding="utf-8") as f:
        for line in f.read().splitlines():
            m = re.match(r"^\s*\w+_file\s*=\s*%d/(\S+)", line)
            if m:
                (creds / m.group(1)).write_text("not-a-real-secret\n")
            m = re.match(r"^\s*\w+_env\s*=\s*(\w+)", line)
            if m:
                env[m.group(1)] = "not-a-real-secret"
    return run([binary, "-c", config_path, "--test-config"], env=env)


def test_sample_config_is_installed_with_the_docs(tree, tmp_path):
    dest = tree.dest("magento-healthd.conf.sample")
    assert dest.endswith("share/doc/magento-healthd/magento-healthd.conf.sample"), dest
    with open(SAMPLE, encoding="utf-8") as f:
        assert tree.read(dest) == f.read()
    binary = tree.path(tree.dest(os.sep + "magento-healthd"))
    r = loads_with_its_credentials(binary, tree.path(dest), tmp_path)
    assert r.returncode == 0, f"the sample configuration does not load: {r.stderr}"


def test_default_config_is_installed_and_starts_a_bare_node(tree, tmp_path):
    """The installed configuration is the bare node's (disk and drain only): it loads with no
    credentials at all, and its other sections are there, commented out."""
    dest = tree.config()
    assert dest.endswith("etc/magento-healthd/magento-healthd.conf"), dest
    text = tree.read(dest)
    with open(DEFAULT_CONFIG, encoding="utf-8") as f:
        assert text == f.read()
    binary = tree.path(tree.dest(os.sep + "magento-healthd"))
    r = run([binary, "-c", tree.path(dest), "--test-config"])
    assert r.returncode == 0 and "2 checks" in r.stdout, r
    for section in (";[check.db]", ";[check.redis_session]", ";[check.fpm]"):
        assert section in text


def test_meson_install_never_overwrites_a_config(tree):
    """Issue 16: an upgrade by `meson install` keeps the node's edited configuration."""
    path = tree.path(tree.config())
    with open(path, "a", encoding="utf-8") as f:
        f.write("; edited on this node\n")
    r = run([shutil.which("meson"), "install", "-C", BUILD_DIR, "--no-rebuild", "--destdir",
             tree.destdir])
    assert r.returncode == 0, r.stderr
    with open(path, encoding="utf-8") as f:
        assert f.read().endswith("; edited on this node\n")


def test_service_runs_the_installed_binary_with_the_installed_config(tree):
    unit = unit_settings(tree.read(tree.dest("magento-healthd.service")))
    (exec_start,) = unit[("Service", "ExecStart")]
    argv = exec_start.split()
    assert argv[0] == tree.dest(os.sep + "magento-healthd")
    assert argv[1] == "-c" and os.path.isfile(tree.path(argv[2])), argv


@pytest.mark.skipif(not os.path.exists(NGINX_SNIPPET), reason="no nginx/magento-healthd.conf yet")
def test_nginx_snippet_is_installed(tree):
    dest = tree.dest(os.path.join("nginx", "magento-healthd.conf"))
    assert "/nginx/" in dest, dest
    with open(NGINX_SNIPPET, encoding="utf-8") as f:
        assert tree.read(dest) == f.read()


def render_man(tree, suffix):
    """The installed man page, as `man -l` renders it (or its roff source without man-db)."""
    dest = tree.dest(suffix)
    assert re.search(r"/man/man[58]/", dest), dest
    roff = tree.read(dest)
    assert re.search(r"^\.TH ", roff, re.M), f"{dest} is not a man page"
    if not shutil.which("man"):
        return roff
    r = run(["man", "-l", tree.path(dest)], env={"MANWIDTH": "1000"})
    assert r.returncode == 0 and not r.stderr, r.stderr
    return r.stdout


def test_daemon_man_page(tree):
    text = render_man(tree, "magento-healthd.8")
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "ENDPOINTS", "SIGNALS", "SYSTEMD",
                    "FILES", "EXIT STATUS", "SEE ALSO"):
        assert re.search(rf"^{section}$", text, re.M), f"magento-healthd(8) lacks {section}"
    # Every option that --help lists is documented.
    r = run([BINARY, "--help"])
    options = set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", r.stdout))
    assert {"-c", "--config", "--check", "-t", "--test-config", "-V", "--version"} <= options
    for opt in options:
        assert opt in text, f"magento-healthd(8) does not document {opt}"
    for path in ("/healthcheck/live", "/healthcheck/region", "/healthcheck/region/standby",
                 "/healthcheck/node", "/metrics"):
        assert path in text


def sample_keys():
    """{section kind: keys} of the sample configuration, commented-out keys included: "server",
    "common" and each check type."""
    keys = {"server": set(), "magento": set(), "common": set()}
    section, ctype = None, None
    with open(SAMPLE, encoding="utf-8") as f:
        lines = f.read().splitlines()
    # Section types first: a [check.NAME] section says its type once.
    parser = configparser.ConfigParser(interpolation=None, comment_prefixes=(";", "#"),
                                       inline_comment_prefixes=(" ;",), strict=False)
    parser.read_string("\n".join(lines))
    for line in lines:
        m = re.match(r"^\[([^\]]+)\]", line)
        if m:
            section = m.group(1)
            ctype = parser.get(section, "type", fallback=None) if section.startswith("check.") else None
            continue
        m = re.match(r"^;?([a-z][a-z0-9_]*)\s*=", line)  # "key =" or ";key =", not "; prose"
        if not m or section is None:
            continue
        key = m.group(1)
        if section in ("server", "magento"):
            keys[section].add(key)
        elif key in COMMON_CHECK_KEYS:
            keys["common"].add(key)
        else:
            keys.setdefault(ctype, set()).add(key)
    return keys


def test_config_man_page_documents_every_sample_key(tree):
    text = render_man(tree, "magento-healthd.conf.5")
    keys = sample_keys()
    assert {"listen", "details_from", "shutdown_delay"} <= keys["server"], keys
    assert {"file", "maintenance_flag"} <= keys["drain"] and "write_probe" in keys["disk"], keys
    assert {"env_php", "env_php_reader", "credentials"} <= keys["magento"], keys
    wanted = keys["server"] | keys["magento"] | COMMON_CHECK_KEYS
    for ctype in DOCUMENTED_TYPES:
        wanted |= keys.get(ctype, set())
    missing = sorted(k for k in wanted if not re.search(rf"(?<![\w.]){k}(?!\w)", text))
    assert not missing, f"magento-healthd.conf(5) does not document: {missing}"
    for ctype in DOCUMENTED_TYPES | {"magento"}:
        assert f"type = {ctype}" in text, ctype


# ---- systemd ----

HARDENING = {
    "Type": "notify", "WatchdogSec": "10s", "Restart": "on-failure", "DynamicUser": "yes",
    "RuntimeDirectory": "magento-healthd", "RuntimeDirectoryMode": "0755",
    "RuntimeDirectoryPreserve": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
    "PrivateTmp": "yes", "PrivateDevices": "yes", "PrivateUsers": "yes", "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "", "AmbientCapabilities": "", "MemoryDenyWriteExecute": "yes",
    "LockPersonality": "yes", "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "SystemCallArchitectures": "native", "UMask": "0077", "LimitNOFILE": "65536",
    "ExecReload": "/bin/kill -HUP $MAINPID",
}


def test_service_settings(tree):
    unit = unit_settings(tree.read(tree.dest("magento-healthd.service")))
    for key, value in HARDENING.items():
        assert unit.get(("Service", key)) == [value], f"{key}={unit.get(('Service', key))}"
    assert unit[("Service", "SystemCallFilter")] == ["@system-service", "~@privileged @resources"]
    # The drain file must be where the drain check looks by default.
    with open(SAMPLE, encoding="utf-8") as f:
        assert "/run/" + HARDENING["RuntimeDirectory"] + "/drain" in f.read()
    assert unit[("Install", "WantedBy")] == ["multi-user.target"]


def test_socket_settings(tree):
    unit = unit_settings(tree.read(tree.dest("magento-healthd.socket")))
    assert unit[("Socket", "ListenStream")] == ["8642"]
    assert unit[("Socket", "Service")] == ["magento-healthd.service"]
    assert unit[("Install", "WantedBy")] == ["sockets.target"]


def test_systemd_analyze_security_exposure(tree):
    analyze = need_tool("systemd-analyze")
    unit = tree.path(tree.dest("magento-healthd.service"))
    r = run([analyze, "security", "--offline=true", unit])
    m = re.search(r"Overall exposure level for magento-healthd\.service: ([0-9]+\.[0-9]+)", r.stdout)
    assert r.returncode == 0 and m, f"unexpected output:\n{r.stdout}\n{r.stderr}"
    exposure = float(m.group(1))
    assert exposure <= MAX_EXPOSURE, f"exposure {exposure} > {MAX_EXPOSURE}:\n{r.stdout}"


def test_systemd_analyze_verify(tree, tmp_path):
    """`systemd-analyze verify` checks that ExecStart's binary exists and that the man pages in
    Documentation= can be found, so the units are checked as installed in the destdir: ExecStart
    points into the destdir, and MANPATH into the destdir's man directory."""
    analyze = need_tool("systemd-analyze")
    service_dest = tree.dest("magento-healthd.service")
    binary_dest = tree.dest(os.sep + "magento-healthd")
    text = tree.read(service_dest)
    assert f"ExecStart={binary_dest} " in text
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    (unit_dir / "magento-healthd.service").write_text(
        text.replace(f"ExecStart={binary_dest} ", f"ExecStart={tree.path(binary_dest)} "))
    (unit_dir / "magento-healthd.socket").write_text(tree.read(tree.dest("magento-healthd.socket")))
    cmd = [analyze, "verify"]
    env = {}
    if shutil.which("man"):
        man_dir = os.path.dirname(os.path.dirname(tree.path(tree.dest("magento-healthd.8"))))
        env["MANPATH"] = man_dir
    else:  # man-db is not installed: the man pages are still checked above, by their .TH
        cmd.append("--man=no")
    r = run(cmd + [str(unit_dir / "magento-healthd.service"), str(unit_dir / "magento-healthd.socket")],
            env=env, cwd=str(tmp_path))
    assert r.returncode == 0 and r.stderr == "" and r.stdout == "", \
        f"systemd-analyze verify (exit {r.returncode}):\n{r.stdout}{r.stderr}"


# ---- the daemon's side of systemd: sd_notify and socket activation ----

def _notify_socket(tmp_path):
    from harness import notify_socket
    return notify_socket(tmp_path)


def test_sd_notify_ready_status_watchdog_reload_stopping(healthd, tmp_path):
    import signal
    import socket as socketlib
    import time

    from harness import wait_until
    sock, path = _notify_socket(tmp_path)
    messages = []

    def drain():
        while True:
            try:
                messages.append((time.monotonic(), sock.recv(4096).decode()))
            except (socketlib.timeout, BlockingIOError):
                return

    started = time.monotonic()
    h = healthd(f"[check.drain]\ntype = drain\nfile = {tmp_path}/drain\ninterval = 1500ms\n"
                f"[check.disk]\ntype = disk\npath = {tmp_path}\ninterval = 1500ms\n",
                env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})

    def has(text):
        drain()
        return any(text == m or m.startswith(text) for _, m in messages)
    wait_until(lambda: has("READY=1"), 10, "READY=1")
    # READY=1 comes only once every check has a first result: readiness is no longer "starting".
    body = h.get("/healthcheck").json()
    assert body.get("output") != "starting" and h.get("/healthcheck").status == 200
    first_ready = next(t for t, m in messages if m == "READY=1")
    assert not any(m == "READY=1" for t, m in messages if t < first_ready)
    wait_until(lambda: has("STATUS=node ready, region ready (unknown), 2/2 checks passing"), 10,
               "a STATUS= summary")

    def pings():
        drain()
        return sum(m == "WATCHDOG=1" for _, m in messages)
    wait_until(lambda: pings() >= 5, 10, "WATCHDOG=1 pings")
    # WatchdogSec=400ms: a ping every 200 ms, at half the interval, not on every 100 ms tick.
    # Counted against the time since start, as queued pings may arrive here in a batch.
    assert pings() <= (time.monotonic() - started) / 0.2 + 1, messages
    messages.clear()
    h.signal(signal.SIGHUP)
    wait_until(lambda: has("RELOADING=1") and has("READY=1"), 10, "RELOADING=1 then READY=1")
    kinds = [m for _, m in messages if m in ("RELOADING=1", "READY=1")]
    assert kinds[:2] == ["RELOADING=1", "READY=1"]
    open(tmp_path / "drain", "w").close()
    wait_until(lambda: has("STATUS=node not ready"), 10, "STATUS to follow a failure")
    h.signal(signal.SIGTERM)
    wait_until(lambda: has("STOPPING=1"), 10, "STOPPING=1")
    sock.close()


def test_sd_notify_sends_no_watchdog_unless_asked(healthd, tmp_path):
    from harness import wait_until
    sock, path = _notify_socket(tmp_path)
    messages = []

    def received(prefix):
        try:
            while True:
                messages.append(sock.recv(4096).decode())
        except OSError:
            pass
        return any(m.startswith(prefix) for m in messages)
    healthd(f"[check.drain]\ntype = drain\nfile = {tmp_path}/drain\ninterval = 100ms\n",
            env={"NOTIFY_SOCKET": path})
    wait_until(lambda: received("READY=1"), 10, "READY=1")
    # Two status changes, each seen by a later 100 ms tick: a ping per tick would be here by now.
    open(tmp_path / "drain", "w").close()
    wait_until(lambda: received("STATUS=node not ready"), 10, "STATUS: draining")
    os.unlink(tmp_path / "drain")
    messages.clear()
    wait_until(lambda: received("STATUS=node ready"), 10, "STATUS: ready again")
    assert "WATCHDOG=1" not in messages, messages
    sock.close()


def _thread_wchan(pid, name):
    """Where in the kernel the thread called `name` sleeps (/proc/PID/task/TID/wchan)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            if f.read().strip() == name:
                with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                    return f.read().strip()
    return None


def test_sd_notify_socket_nobody_reads_does_not_block_shutdown(healthd, tmp_path):
    """sd_notify() blocks once the manager's queue is full (10 datagrams here): the main loop must
    not, or SIGTERM is never taken. The harness's stop() fails on a daemon that hangs or exits
    non-zero."""
    import signal

    from harness import wait_until
    sock, path = _notify_socket(tmp_path)  # bound, never read
    h = healthd(f"[check.drain]\ntype = drain\nfile = {tmp_path}/drain\ninterval = 100ms\n",
                env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
    wait_until(lambda: h.get("/healthcheck").status == 200, 10, "ready")
    # The kernel's queue is full once the sender thread sleeps in the kernel waiting for room.
    wait_until(lambda: _thread_wchan(h.proc.pid, "mh-notify") == "unix_wait_for_peer", 15,
               "sd_notify() to block on the full socket")
    h.signal(signal.SIGTERM)
    wait_until(lambda: h.proc.poll() is not None, 10, "exit on SIGTERM")
    assert h.proc.returncode == 0
    assert h.log().rstrip().endswith("notice: stopped"), h.log()
    sock.close()


def test_socket_activation_uses_the_systemd_socket(tmp_path):
    import signal
    import socket as socketlib

    from harness import BINARY, free_port, http_get, wait_until
    port, ignored = free_port(), free_port()
    while ignored == port:
        ignored = free_port()
    conf = tmp_path / "act.conf"
    conf.write_text(f"[server]\nlisten = 127.0.0.1:{ignored}\nshutdown_delay = 0s\n"
                    f"[check.drain]\ntype = drain\nfile = {tmp_path}/drain\ninterval = 100ms\n")
    log = open(tmp_path / "act.log", "wb")
    proc = subprocess.Popen(["systemd-socket-activate", "-l", f"127.0.0.1:{port}", BINARY, "-c",
                             str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        # The port is open before the daemon runs; the first connection starts it.
        r = wait_until(lambda: http_get("127.0.0.1", port, "/healthcheck/live"), 10,
                       "the activated daemon to answer")
        assert r.status == 200
        wait_until(lambda: b"listening socket(s) from systemd" in open(tmp_path / "act.log",
                                                                       "rb").read(), 5, "log")
        with pytest.raises(ConnectionRefusedError):
            socketlib.create_connection(("127.0.0.1", ignored), timeout=1).close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        log.close()
