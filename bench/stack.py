"""Shared by bench/run and bench/soak: a whole Magento-node stack on loopback, in one temp dir.

MariaDB, Redis, php-fpm (with Debian's php.ini and conf.d, so opcache, pdo_mysql and redis are
loaded), nginx and magento-healthd with every check type, reusing the integration tests' service
starters (tests/svc_*.py, tests/harness.py). Everything is stopped and the temp dir removed by
Stack.close(), which the scripts call from `finally` (also on Ctrl-C and SIGTERM).
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import harness  # noqa: E402
from harness import Healthd, free_port, http_get, terminate, wait_until  # noqa: E402
import svc_fpm  # noqa: E402
from svc_mariadb import MariaDBFactory  # noqa: E402
from svc_nginx import Nginx  # noqa: E402
from svc_redis import RedisServer  # noqa: E402

DB_USER, DB_PASSWORD = "healthd", "bench-healthd-pw"
MAGENTO_USER, MAGENTO_PASSWORD = "magento", "bench-magento-pw"
TOKEN = "bench-details-token-0123456789"
OUTSIDER = "127.0.0.2"  # a client address outside details_from, as the ALB is

# What Magento's pub/health_check.php does for its dependencies, minus the Magento bootstrap
# (which makes the real script much slower): a NEW database connection per request (no query),
# and for the cache a NEW Redis connection per request (PING here, HGET in Cm_Cache_Backend_Redis).
# Over unix sockets: on one host, thousands of new loopback TCP connections per second run out of
# ephemeral ports (TIME_WAIT) within seconds and the script would measure its own 500s. Sockets
# also make it faster than over TCP, so the comparison errs in PHP's favour.
HEALTH_CHECK_PHP = r"""<?php
try {
    $pdo = new PDO('mysql:unix_socket=@DBSOCK@;dbname=magento_healthd', '@USER@', '@PW@',
                   [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION, PDO::ATTR_TIMEOUT => 2]);
    $redis = new Redis();
    $redis->connect('@REDISSOCK@', 0, 2.0);
    if ($redis->ping() === false) { throw new Exception('redis ping'); }
    $redis->close();
    $pdo = null;
} catch (Throwable $e) {
    http_response_code(500);
    echo "unhealthy\n";
    exit(1);
}
echo "ok\n";
"""


def default_binary():
    return os.environ.get("MH_BINARY", os.path.join(ROOT, "build-bench", "magento-healthd"))


def ensure_binary(path):
    """Builds build-bench (release) when the default binary is missing."""
    if os.path.exists(path):
        return path
    if os.path.abspath(path) != os.path.join(ROOT, "build-bench", "magento-healthd"):
        sys.exit(f"no binary at {path}")
    print(f"building {path} (meson release build in build-bench) ...", flush=True)
    bdir = os.path.join(ROOT, "build-bench")
    if not os.path.exists(os.path.join(bdir, "build.ninja")):
        subprocess.run(["meson", "setup", bdir, "-Dbuildtype=release", "-Dintegration_tests=false"],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", bdir, "magento-healthd"], check=True, stdout=subprocess.DEVNULL)
    return path


def check_php_extensions():
    out = subprocess.run(["php-fpm8.2", "-m"], capture_output=True, text=True).stdout.lower()
    missing = [m for m in ("pdo_mysql", "redis") if m not in out.split()]
    if missing:
        sys.exit(f"php-fpm8.2 lacks {', '.join(missing)}: apt-get install php8.2-mysql php8.2-redis")


class Stack:
    def __init__(self, binary, nginx=True, fpm_children=8, check_extra="", keep=False):
        self.binary = binary
        self.want_nginx = nginx
        self.fpm_children = fpm_children
        self.check_extra = check_extra
        self.keep = keep
        self.dir = tempfile.mkdtemp(prefix="mh-bench-")
        self.db = self.redis = self.fpm = self.nginx = self.healthd = None
        self._factory = None

    # ---- lifecycle ----

    def start(self):
        check_php_extensions()
        harness.BINARY = self.binary
        self._factory = MariaDBFactory(os.path.join(self.dir, "mariadb"))
        self.db = self._factory.new("db")
        self.db.create_database("magento_healthd")
        self.db.create_user(DB_USER, DB_PASSWORD, ["SELECT, INSERT, UPDATE, CREATE ON magento_healthd.*"])
        self.db.create_user(MAGENTO_USER, MAGENTO_PASSWORD, ["SELECT ON magento_healthd.*"])
        self.redis = RedisServer(os.path.join(self.dir, "redis"),
                                 extra={"maxclients": "10000", "tcp-backlog": "4096"}).start()
        self.fpm = svc_fpm.Fpm(php_ini=True, max_children=self.fpm_children, status_listen=True,
                       listen=f"127.0.0.1:{free_port()}", parent=self.dir)
        with open(os.path.join(self.fpm.docroot, "health_check.php"), "w") as f:
            f.write(HEALTH_CHECK_PHP.replace("@DBSOCK@", self.db.socket)
                    .replace("@REDISSOCK@", self.redis.socket)
                    .replace("@USER@", MAGENTO_USER).replace("@PW@", MAGENTO_PASSWORD))
        self.fpm.start()
        if self.want_nginx:
            body = f"""
        location = /static {{ access_log off; return 200 "ok"; }}
        location = /health_check.php {{
            access_log off;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME {self.fpm.docroot}/health_check.php;
            fastcgi_pass {self.fpm.socket};
        }}"""
            self.nginx = Nginx(self.dir, body, http_extra="keepalive_requests 1000000;").start()
        self.start_healthd()
        return self

    def start_healthd(self):
        pw = os.path.join(self.dir, "mysql.pw")
        with open(pw, "w") as f:
            f.write(DB_PASSWORD + "\n")
        tok = os.path.join(self.dir, "token")
        with open(tok, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(pw, 0o600)
        os.chmod(tok, 0o600)
        x = self.check_extra
        config = f"""
[check.db]
type = mysql
host = 127.0.0.1
port = {self.db.port}
user = {DB_USER}
password_file = {pw}
database = magento_healthd
writer_region = test-region
{x}
[check.redis_session]
type = redis
role = session
host = 127.0.0.1
port = {self.redis.port}
{x}
[check.redis_cache]
type = redis
role = cache
host = 127.0.0.1
port = {self.redis.port}
{x}
[check.fpm]
type = fpm
socket = {self.fpm.socket}
status_socket = {self.fpm.status_socket}
{x}
[check.disk]
type = disk
path = {self.dir}
{x}
[check.drain]
type = drain
file = {self.dir}/drain
{x}
"""
        # The benchmark client (127.0.0.1) must NOT be in details_from, or every request would
        # get the per-request detailed rendering instead of the pre-rendered public body.
        extra = f"details_from = {OUTSIDER}/32\ndetails_token_file = {tok}\n"
        self.healthd = Healthd(self.dir, config, server_extra=extra).start()
        wait_until(lambda: self.detailed_ok(), 20, "every check to pass")

    def close(self):
        for step in (self._stop_healthd, self._stop_nginx, self._stop_fpm, self._stop_redis,
                     self._stop_db):
            try:
                step()
            except Exception as e:  # noqa: BLE001 - stop the rest
                print(f"cleanup: {step.__name__}: {e}", file=sys.stderr)
        if self.keep:
            print(f"kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _stop_healthd(self):
        h = self.healthd
        if h and h.proc and h.proc.poll() is None:
            terminate(h.proc, timeout=15)
            h.logf.close()

    def _stop_nginx(self):
        if self.nginx:
            self.nginx.stop()

    def _stop_fpm(self):
        if self.fpm:
            self.fpm.stop()

    def _stop_redis(self):
        if self.redis:
            self.redis.stop()

    def _stop_db(self):
        if self.db and self.db.running():
            self.db.proc.send_signal(signal.SIGCONT)  # in case it was frozen
        if self._factory:
            self._factory.stop_all()

    # ---- the daemon ----

    @property
    def pid(self):
        return self.healthd.proc.pid

    def url(self, path="/healthcheck"):
        return f"http://127.0.0.1:{self.healthd.port}{path}"

    def detailed(self, timeout=2.0):
        r = http_get("127.0.0.1", self.healthd.port, "/healthcheck", timeout=timeout,
                     headers={"Authorization": f"Bearer {TOKEN}"})
        return r.status, r.json()

    def detailed_ok(self):
        status, body = self.detailed()
        checks = body.get("checks", {})
        return status == 200 and checks and all(
            e[0].get("status") in ("pass", "warn") and "time" in e[0] for e in checks.values())

    def metrics(self):
        r = http_get("127.0.0.1", self.healthd.port, "/metrics", source=OUTSIDER,
                     headers={"Authorization": f"Bearer {TOKEN}"})
        return r.body

    def check_runs(self, check):
        m = re.search(r'^magento_healthd_check_runs_total\{check="%s"[^}]*\} (\d+)' % re.escape(check),
                      self.metrics(), re.M)
        return int(m.group(1)) if m else None

    def http_requests_total(self):
        return sum(float(v) for v in re.findall(
            r'^magento_healthd_http_requests_total\{[^}]*\} (\S+)', self.metrics(), re.M))


# ---- /proc ----

def proc_status(pid, key):
    """A /proc/PID/status field in KiB (VmRSS, VmHWM) or as text."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                v = line.split()[1]
                return int(v) if v.isdigit() else v
    return None


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # fields 14 and 15 of stat(5)


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


# ---- wrk ----

WRK_DONE_LUA = """
done = function(summary, latency, requests)
  io.write(string.format("MH requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d "
    .. "connect=%d read=%d write=%d timeout=%d status=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, summary.errors.status))
end
"""

# Tallies status codes per thread (slower than WRK_DONE_LUA: used by the soak only).
WRK_CODES_LUA = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) codes = {} end
function response(status, headers, body) codes[status] = (codes[status] or 0) + 1 end
done = function(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("codes")) do total[k] = (total[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, k .. ":" .. v) end
  io.write(string.format("MH requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d "
    .. "connect=%d read=%d write=%d timeout=%d status=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, summary.errors.status))
  io.write("MHCODES " .. table.concat(parts, ",") .. "\\n")
end
"""


def write_lua(dirpath, name, text):
    path = os.path.join(dirpath, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def wrk_command(url, duration, connections, threads, close=False, headers=(), script=None):
    cmd = ["wrk", "--latency", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
           "--timeout", "5s"]
    if close:
        cmd += ["-H", "Connection: close"]
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    return cmd + [url]


def parse_wrk(out):
    m = re.search(r"^MH (.*)$", out, re.M)
    if not m:
        raise RuntimeError("wrk printed no summary:\n" + out)
    r = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6) if r["duration_us"] else 0.0
    n = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(n.group(1)) if n else 0
    c = re.search(r"^MHCODES (.*)$", out, re.M)
    if c:
        r["codes"] = {int(k): int(v) for k, v in (p.split(":") for p in c.group(1).split(",") if p)}
    r["raw"] = out
    return r


def smaps_rollup(pid, key):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None
