"""A throwaway php-fpm (Debian php8.2-fpm) for the tests, and a tiny FastCGI client to drive it.

Fpm(...).start() runs `php-fpm8.2 -R -F -n -y <own conf>` in a fresh temp dir with one pool on a
unix socket (and, optionally, pm.status_listen on a second one). Its pid file and log stay in that
dir. The docroot holds slow.php, which sleeps for ?s=SECONDS, so a test can keep workers busy.
Readiness is polled (a real ping over FastCGI) with a deadline, never slept for.
"""
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time

from harness import terminate

FPM_BINARY = os.environ.get("MH_PHP_FPM", "/usr/sbin/php-fpm8.2")

SLOW_PHP = """<?php
$s = isset($_GET['s']) ? (float)$_GET['s'] : 5.0;
usleep((int)($s * 1000000));
echo "slept $s\\n";
"""


# ---- A minimal FastCGI client (independent of the C one under test) ----

def _record(rtype, content=b"", req_id=1):
    return struct.pack(">BBHHBx", 1, rtype, req_id, len(content), 0) + content


def _nv(name, value):
    out = b""
    for n in (len(name), len(value)):
        out += bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    return out + name + value


def fcgi_request_bytes(script, query="", docroot="/"):
    params = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": script,
        "SCRIPT_FILENAME": os.path.join(docroot, script.lstrip("/")),
        "DOCUMENT_URI": script,
        "REQUEST_URI": script + ("?" + query if query else ""),
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
    }
    body = b"".join(_nv(k.encode(), v.encode()) for k, v in params.items())
    return (_record(1, struct.pack(">HB5x", 1, 0)) + _record(4, body) + _record(4) + _record(5))


def fcgi_read_reply(sock):
    """Returns (stdout, stderr) bytes after END_REQUEST."""
    buf = b""
    out, err = b"", b""
    while True:
        while len(buf) >= 8:
            _, rtype, _, clen, plen = struct.unpack(">BBHHBx", buf[:8])
            if len(buf) < 8 + clen + plen:
                break
            content = buf[8:8 + clen]
            buf = buf[8 + clen + plen:]
            if rtype == 6:
                out += content
            elif rtype == 7:
                err += content
            elif rtype == 3:
                return out, err
        chunk = sock.recv(65536)
        if not chunk:
            raise OSError("php-fpm closed the connection before END_REQUEST")
        buf += chunk


class Fpm:
    """One php-fpm master with one pool. All paths live in a fresh temp dir (short, for sun_path)."""

    def __init__(self, max_children=2, status_listen=True, ping_path="/ping",
                 ping_response="pong", status_path="/status", listen=None, parent=None,
                 php_ini=False):
        """`listen` overrides the main socket (e.g. "127.0.0.1:PORT"); `parent` is the directory
        to create the pool's own dir in (default: the system temp dir). `php_ini` loads Debian's
        php.ini and conf.d (extensions such as pdo_mysql); by default php-fpm runs with -n."""
        self.php_ini = php_ini
        self.dir = tempfile.mkdtemp(prefix="mh-fpm-", dir=parent)
        self.docroot = os.path.join(self.dir, "www")
        os.mkdir(self.docroot)
        with open(os.path.join(self.docroot, "slow.php"), "w") as f:
            f.write(SLOW_PHP)
        self.socket = listen or os.path.join(self.dir, "fpm.sock")
        self.status_socket = os.path.join(self.dir, "status.sock") if status_listen else None
        self.max_children = max_children
        self.ping_path = ping_path
        self.ping_response = ping_response
        self.status_path = status_path
        self.conf = os.path.join(self.dir, "php-fpm.conf")
        self.log_path = os.path.join(self.dir, "fpm.log")
        self.proc = None
        self._held = []
        self._write_conf()

    def _write_conf(self):
        lines = [
            "[global]",
            f"pid = {self.dir}/fpm.pid",
            f"error_log = {self.log_path}",
            "daemonize = no",
            "log_level = notice",
            "",
            "[www]",
            f"listen = {self.socket}",
            "pm = static",
            f"pm.max_children = {self.max_children}",
            f"chdir = {self.docroot}",
            "catch_workers_output = yes",
        ]
        if self.status_path:
            lines.append(f"pm.status_path = {self.status_path}")
        if self.status_socket:
            lines.append(f"pm.status_listen = {self.status_socket}")
        if self.ping_path:
            lines.append(f"ping.path = {self.ping_path}")
            lines.append(f"ping.response = {self.ping_response}")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def start(self, timeout=10.0):
        no_ini = [] if self.php_ini else ["-n"]
        self.proc = subprocess.Popen([FPM_BINARY, "-R", "-F"] + no_ini + ["-y", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"php-fpm exited with {self.proc.returncode}: {self.log()}")
            try:
                if self.ready():
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"php-fpm not ready after {timeout}s: {self.log()}")
            time.sleep(0.02)

    def ready(self):
        """True once every socket this pool has answers a FastCGI request."""
        if self.ping_path:
            out, _ = self.request(self.ping_path, timeout=1.0)
            if not out.endswith(self.ping_response.encode()):
                return False
        if self.status_socket and self.status_path:
            self.request(self.status_path, "json", sock_path=self.status_socket, timeout=1.0)
        return True

    def request(self, script, query="", sock_path=None, timeout=5.0):
        """One FastCGI GET; returns (stdout, stderr) bytes."""
        with self._connect(sock_path or self.socket, timeout) as s:
            s.sendall(fcgi_request_bytes(script, query, self.docroot))
            return fcgi_read_reply(s)

    def status(self, sock_path=None):
        import json
        out, _ = self.request(self.status_path, "json", sock_path or self.status_socket or self.socket)
        return json.loads(out.split(b"\r\n\r\n", 1)[1])

    def send_and_hold(self, script, query=""):
        """Sends a request on the main socket and returns without reading the reply. The
        connection stays open (and the request queued or running) until stop()."""
        s = self._connect(self.socket, 5.0)
        self._held.append(s)
        s.sendall(fcgi_request_bytes(script, query, self.docroot))
        return s

    def hold_worker(self, seconds):
        """Keeps one worker busy: slow.php runs for `seconds`."""
        return self.send_and_hold("/slow.php", f"s={seconds}")

    def _connect(self, path, timeout):
        if path.startswith("/"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            addr = path
        else:
            host, port = path.rsplit(":", 1)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            addr = (host, int(port))
        s.settimeout(timeout)
        try:
            s.connect(addr)
        except OSError:
            s.close()
            raise
        return s

    def stop(self):
        for s in self._held:
            s.close()
        self._held = []
        terminate(self.proc)
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
