"""A throwaway RabbitMQ broker for tests (Debian 12's rabbitmq-server 3.10): its own node name,
data and log directories, Erlang cookie ($HOME), epmd, distribution port and free AMQP ports on
127.0.0.1, started by the test and stopped afterwards, also when the test fails.

Start-up takes several seconds, so a test module starts ONE broker (a module-scoped fixture) and
isolates its tests by virtual host. Users, vhosts and permissions come from a definitions file
loaded at boot (no management plugin, no rabbitmqctl round trips); queues and messages are made
over AMQP with pika.

    rmq = RabbitMQ(workdir, vhosts=["a", "b"], users={"healthd": "pw"}, tls=tls_dir).start()
    rmq.declare_queue("a", "async.operations.all"); rmq.publish("a", "async.operations.all", 5)
    consumer = rmq.consumer("a", "async.operations.all")   # a registered consumer; close() it
    rmq.freeze(); rmq.thaw(); rmq.stop(); rmq.start()      # same ports, same data
    rmq.close()                                            # stops the broker and its epmd

The broker runs as root straight from /usr/lib/rabbitmq/bin (the /usr/sbin wrapper would su to
the rabbitmq user). Its own epmd is started here on a free port (ERL_EPMD_PORT), so parallel
test modules and a system broker never share one, and it is killed by PID in close().
"""
import base64
import glob
import hashlib
import json
import os
import signal
import socket
import subprocess

import pika

from harness import free_port, terminate, wait_until

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
ADMIN, ADMIN_PASSWORD = "mh-admin", "admin-password-for-tests"


def _epmd_binary():
    found = sorted(glob.glob("/usr/lib/erlang/erts-*/bin/epmd"))
    return found[-1] if found else "epmd"


def password_hash(password):
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


class RabbitMQ:
    def __init__(self, workdir, vhosts=("/",), users=None, permissions=None, tls=None):
        """`users`: {name: password}, each with full permissions on every vhost unless
        `permissions` gives {name: (configure, write, read)}. `tls`: a directory holding ca.pem,
        server.pem and server.key, for a TLS listener on self.tls_port."""
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.node = f"mh{self.port}@localhost"
        self.vhosts = list(vhosts)
        self.users = dict(users or {})
        self.permissions = dict(permissions or {})
        self.tls = str(tls) if tls else None
        self.proc = None
        self.epmd = None
        self.frozen = False
        self.log_dir = os.path.join(self.dir, "log")
        self._write_files()

    # ---- configuration ----

    def _definitions(self):
        users = [{"name": ADMIN, "password_hash": password_hash(ADMIN_PASSWORD),
                  "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": "administrator"}]
        perms = []
        for name, pw in self.users.items():
            users.append({"name": name, "password_hash": password_hash(pw),
                          "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ""})
        for v in self.vhosts:
            perms.append({"user": ADMIN, "vhost": v, "configure": ".*", "write": ".*",
                          "read": ".*"})
            for name in self.users:
                conf, write, read = self.permissions.get(name, (".*", ".*", ".*"))
                perms.append({"user": name, "vhost": v, "configure": conf, "write": write,
                              "read": read})
        return {"users": users, "vhosts": [{"name": v} for v in self.vhosts],
                "permissions": perms}

    def _write_files(self):
        with open(os.path.join(self.dir, "definitions.json"), "w") as f:
            json.dump(self._definitions(), f)
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        lines = [
            f"listeners.tcp.default = {self.host}:{self.port}",
            f"load_definitions = {self.dir}/definitions.json",
            "loopback_users = none",
            "disk_free_limit.absolute = 1",  # no disk alarm (it blocks publishers) on small CI disks
            "log.console = false",
            "log.file.level = info",
        ]
        if self.tls:
            lines += [
                f"listeners.ssl.default = {self.host}:{self.tls_port}",
                f"ssl_options.cacertfile = {self.tls}/ca.pem",
                f"ssl_options.certfile = {self.tls}/server.pem",
                f"ssl_options.keyfile = {self.tls}/server.key",
                "ssl_options.verify = verify_none",
                "ssl_options.fail_if_no_peer_cert = false",
            ]
        with open(os.path.join(self.dir, "rabbitmq.conf"), "w") as f:
            f.write("\n".join(lines) + "\n")

    def _env(self):
        env = dict(os.environ)
        d = self.dir
        env.update({
            "HOME": d,  # the Erlang cookie: $HOME/.erlang.cookie, made on first start
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": self.host,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": os.path.join(d, "mnesia"),
            "RABBITMQ_LOG_BASE": self.log_dir,
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(d, "enabled_plugins"),
            "RABBITMQ_PID_FILE": os.path.join(d, "rabbitmq.pid"),
            "RABBITMQ_CONFIG_FILE": os.path.join(d, "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(d, "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": os.path.join(d, "rabbitmq-env.conf"),
        })
        return env

    # ---- process control ----

    def start(self, timeout=60.0):
        if self.epmd is None or self.epmd.poll() is not None:
            self.epmd = subprocess.Popen([_epmd_binary(), "-port", str(self.epmd_port),
                                         "-address", "127.0.0.1"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.out = open(os.path.join(self.dir, "stdout.log"), "ab")
        # A new session: the broker's children (erl_child_setup, inet_gethost) go with it.
        self.proc = subprocess.Popen([SERVER], env=self._env(), stdout=self.out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self.frozen = False
        wait_until(self._answers, timeout, f"rabbitmq-server on port {self.port} to log us in")
        return self

    def _answers(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"rabbitmq-server exited with {self.proc.returncode}: {self.log()}")
        try:
            self.connection(self.vhosts[0], socket_timeout=1).close()
        except pika.exceptions.AMQPError:
            return False
        if not self.tls:
            return True
        # The TLS listener starts after the plain one, and the broker runs on without it when it
        # cannot listen (its port taken): say so here rather than in a TLS test's timeout.
        try:
            socket.create_connection((self.host, self.tls_port), timeout=1).close()
            return True
        except OSError:
            try:
                with open(os.path.join(self.log_dir, f"{self.node}.log"), errors="replace") as f:
                    failed = "Failed to start Ranch listener" in f.read()
            except OSError:
                failed = False
            if failed:
                raise AssertionError(f"rabbitmq-server could not listen on TLS port "
                                     f"{self.tls_port}: {self.log()[-2000:]}")
            return False

    def beam_pid(self):
        with open(os.path.join(self.dir, "rabbitmq.pid")) as f:
            return int(f.read().strip())

    def stop(self):
        """Stops the broker (thawing it first: a stopped process cannot act on SIGTERM)."""
        if not self.proc:
            return
        if self.proc.poll() is None and self.frozen:
            self.thaw()
        terminate(self.proc, timeout=30)
        self.proc = None
        self.out.close()
        # A node started again at once under the same name must not find the old one still
        # registered with epmd (it would refuse to start).
        wait_until(lambda: self.node.split("@")[0] not in self._epmd_names(), 10,
                   f"{self.node} to leave epmd")

    def _epmd_names(self):
        r = subprocess.run([_epmd_binary(), "-port", str(self.epmd_port), "-names"],
                           capture_output=True, text=True, timeout=5)
        return [line.split()[1] for line in r.stdout.splitlines() if line.startswith("name ")]

    def close(self):
        """Stops the broker and the epmd started for it."""
        self.stop()
        terminate(self.epmd)
        self.epmd = None

    def freeze(self):
        """SIGSTOP the Erlang VM: the kernel still accepts TCP connections, nothing answers."""
        os.kill(self.beam_pid(), signal.SIGSTOP)
        self.frozen = True

    def thaw(self):
        os.kill(self.beam_pid(), signal.SIGCONT)
        self.frozen = False

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        """The tails of the broker's stdout (start-up failures end up there) and its log."""
        text = ""
        for path in (os.path.join(self.dir, "stdout.log"),
                     os.path.join(self.log_dir, f"{self.node}.log")):
            try:
                with open(path, errors="replace") as f:
                    text += f"--- {path}:\n" + f.read()[-2000:]
            except OSError:
                pass
        return text

    # ---- talking to it over AMQP (as the admin) ----

    def connection(self, vhost, socket_timeout=5):
        params = pika.ConnectionParameters(
            self.host, self.port, vhost, pika.PlainCredentials(ADMIN, ADMIN_PASSWORD),
            heartbeat=0, socket_timeout=socket_timeout, blocked_connection_timeout=10,
            connection_attempts=1)
        return pika.BlockingConnection(params)

    def declare_queue(self, vhost, queue):
        with self.connection(vhost) as c:
            c.channel().queue_declare(queue, durable=True)

    def publish(self, vhost, queue, count):
        """Publishes `count` messages to `queue` with publisher confirms: all are in the queue
        when this returns."""
        with self.connection(vhost) as c:
            ch = c.channel()
            ch.confirm_delivery()
            for i in range(count):
                ch.basic_publish("", queue, b"{}", pika.BasicProperties(delivery_mode=2))

    def queue_state(self, vhost, queue):
        """(messages ready, consumers), as a passive queue.declare reports them."""
        with self.connection(vhost) as c:
            ok = c.channel().queue_declare(queue, passive=True).method
            return ok.message_count, ok.consumer_count

    def consumer(self, vhost, queue):
        """A connection with one consumer registered on `queue` (prefetch 1, no acks: it holds
        at most one message). Close it to remove the consumer."""
        c = self.connection(vhost)
        ch = c.channel()
        ch.basic_qos(prefetch_count=1)
        ch.basic_consume(queue, lambda *a: None)
        return c
