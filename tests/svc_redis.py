"""A throwaway redis-server for tests: its own directory, unix socket and free port on 127.0.0.1.

Tests need real Redis behaviour (READONLY on a replica, OOM under noeviction, ACL NOPERM, a frozen
process), so each test starts its own server and stops it afterwards, also when the test fails.
The class is meant to be reused, e.g. by the region-failover drill: region B's server replicates
region A's (`replicate(a)`) and is promoted with `promote()` (REPLICAOF NO ONE).

    srv = RedisServer(tmp_path / "r1", password="s3cret", maxmemory="2mb").start()
    srv.freeze(); srv.thaw(); srv.stop(); srv.start()   # same port, same socket
    srv.client().set("k", "v")                          # admin client (redis-py) over the socket

Use it as a context manager or call stop() from a fixture finalizer.
"""
import os
import shutil
import signal
import socket
import subprocess

import redis

from harness import free_port, terminate, wait_until

REDIS_SERVER = shutil.which("redis-server") or "/usr/sbin/redis-server"


class AclUser:
    """An ACL user line: `user NAME on >PASSWORD <patterns> <permissions>`."""

    def __init__(self, name, password, keys="~*", commands="+@all"):
        self.name = name
        self.password = password
        self.keys = keys
        self.commands = commands

    def line(self):
        return f"user {self.name} on >{self.password} {self.keys} {self.commands}"


class RedisServer:
    """One redis-server process bound to 127.0.0.1 and a unix socket in `workdir`."""

    def __init__(self, workdir, port=None, password=None, acl_users=(), replicaof=None,
                 masterauth=None, maxmemory=None, maxmemory_policy="noeviction", extra=None):
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.socket = os.path.join(self.workdir, "redis.sock")
        self.conf_path = os.path.join(self.workdir, "redis.conf")
        self.log_path = os.path.join(self.workdir, "redis.log")
        self.password = password
        self.acl_users = list(acl_users)
        self.replicaof = replicaof  # a RedisServer, or (host, port)
        self.masterauth = masterauth
        self.maxmemory = maxmemory
        self.maxmemory_policy = maxmemory_policy
        self.extra = dict(extra or {})
        self.proc = None
        self.frozen = False

    # ---- configuration ----

    def _config_lines(self):
        lines = [
            f"port {self.port}",
            f"bind {self.host}",
            f"unixsocket {self.socket}",
            "unixsocketperm 700",
            f"dir {self.workdir}",
            f"logfile {self.log_path}",
            "daemonize no",
            'save ""',
            "appendonly no",
            "protected-mode yes",
            "loglevel notice",
        ]
        if self.password:
            lines.append(f"requirepass {self.password}")
        lines += [u.line() for u in self.acl_users]
        if self.replicaof:
            host, port = self._address_of(self.replicaof)
            lines.append(f"replicaof {host} {port}")
        if self.masterauth:
            lines.append(f"masterauth {self.masterauth}")
        if self.maxmemory:
            lines.append(f"maxmemory {self.maxmemory}")
            lines.append(f"maxmemory-policy {self.maxmemory_policy}")
        lines += [f"{k} {v}" for k, v in self.extra.items()]
        return lines

    @staticmethod
    def _address_of(other):
        if isinstance(other, RedisServer):
            return other.host, other.port
        return other

    def healthd_keys(self, unix=False):
        """The host/port (or socket) lines of a [check.NAME] section pointing at this server."""
        if unix:
            return f"socket = {self.socket}\n"
        return f"host = {self.host}\nport = {self.port}\n"

    # ---- process control ----

    def start(self, timeout=10.0):
        with open(self.conf_path, "w") as f:
            f.write("\n".join(self._config_lines()) + "\n")
        self.proc = subprocess.Popen([REDIS_SERVER, self.conf_path], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
        self.frozen = False
        wait_until(self._answers, timeout, f"redis-server on port {self.port} to answer PING")
        return self

    def _answers(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"redis-server exited with {self.proc.returncode}: {self.log()}")
        try:
            return self.client(socket_timeout=0.5).ping()
        except redis.exceptions.BusyLoadingError:
            return False
        except redis.exceptions.ConnectionError:
            return False

    def stop(self):
        """Stops the server (thawing it first: a stopped process cannot act on SIGTERM)."""
        if not self.proc:
            return
        if self.proc.poll() is None and self.frozen:
            self.thaw()
        terminate(self.proc)
        self.proc = None

    def freeze(self):
        """SIGSTOP: the kernel still accepts TCP connections, but nothing is ever answered."""
        self.proc.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self):
        self.proc.send_signal(signal.SIGCONT)
        self.frozen = False

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def __enter__(self):
        return self.start() if not self.running() else self

    def __exit__(self, *exc):
        self.stop()

    # ---- talking to it (as the admin: the default user) ----

    def client(self, db=0, socket_timeout=5.0, **kw):
        return redis.Redis(unix_socket_path=self.socket, password=self.password, db=db,
                           socket_timeout=socket_timeout, **kw)

    def info(self, section=None):
        with self.client() as c:
            return c.info(section) if section else c.info()

    def role(self):
        """'master' or 'slave', as INFO says."""
        return self.info("replication")["role"]

    def replicate(self, master):
        """REPLICAOF master: this server becomes a read-only replica of `master`."""
        host, port = self._address_of(master)
        with self.client() as c:
            if getattr(master, "password", None):
                c.config_set("masterauth", master.password)
            c.execute_command("REPLICAOF", host, port)
        self.replicaof = master

    def promote(self):
        """REPLICAOF NO ONE: this replica becomes a writable master (a region failover)."""
        with self.client() as c:
            c.execute_command("REPLICAOF", "NO", "ONE")
        self.replicaof = None

    def wait_replicating(self, timeout=10.0):
        """Waits until this replica's link to its master is up and the first sync is done."""
        def up():
            rep = self.info("replication")
            return rep.get("master_link_status") == "up" and not rep.get("master_sync_in_progress")
        return wait_until(up, timeout, f"replica on port {self.port} to sync")

    def fill_until_oom(self, chunk=16 * 1024, limit=10000, margin=256 * 1024):
        """Writes values until the server refuses with OOM (maxmemory + noeviction), then lowers
        maxmemory `margin` bytes below the memory in use: once this client disconnects and its
        buffers are freed the server must still be full. Returns the number of keys written."""
        value = b"x" * chunk
        with self.client() as c:
            for i in range(limit):
                try:
                    c.set(f"fill:{i}", value)
                except redis.exceptions.ResponseError as e:
                    if not str(e).startswith("OOM"):
                        raise
                    used = c.info("memory")["used_memory"]
                    c.config_set("maxmemory", max(1, used - margin))
                    self.maxmemory = max(1, used - margin)
                    return i
        raise AssertionError(f"redis on port {self.port} never reported OOM")

    def set_maxmemory(self, maxmemory, policy="noeviction"):
        with self.client() as c:
            c.config_set("maxmemory-policy", policy)
            c.config_set("maxmemory", maxmemory)
        self.maxmemory, self.maxmemory_policy = maxmemory, policy


def wait_stopped(port, timeout=5.0):
    """Waits until nothing accepts connections on 127.0.0.1:port."""
    def refused():
        with socket.socket() as s:
            s.settimeout(0.2)
            return s.connect_ex(("127.0.0.1", port)) != 0
    return wait_until(refused, timeout, f"port {port} to close")


