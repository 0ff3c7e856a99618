"""Throwaway MariaDB servers for the integration tests (Debian's mariadb-server).

Each MariaDB instance has its own datadir, unix socket and free TCP port on 127.0.0.1, runs as
root (tests run as root) and is stopped by its owner. Installing a datadir takes about a second,
so one installed template per test process is copied for every instance.

    factory = MariaDBFactory(base_dir)
    db = factory.new()                      # started; db.port, db.socket
    db.add_healthd_user("pw")               # schema + least-privilege user "healthd"
    section = db.healthd_keys("/path/pw")   # host/port/user/password_file lines
    replica = factory.new()
    replica.replicate_from(db)             # real primary -> replica replication, read_only=ON
    replica.stop_replication(); replica.promote()
    factory.stop_all()                      # also on test failure (call it from a finalizer)

Synchronisation is by polling with a deadline (harness.wait_until), never by sleeping.
"""
import atexit
import itertools
import os
import shutil
import signal
import subprocess
import tempfile

import pymysql

from harness import free_port, wait_until

MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"

# Small and fast: tests need seconds, not throughput.
FAST_ARGS = [
    "--innodb-buffer-pool-size=16M",
    "--innodb-log-file-size=8M",
    "--skip-name-resolve",
    "--performance-schema=off",
    "--innodb-flush-log-at-trx-commit=2",
    "--sync-binlog=0",
]

_server_ids = itertools.count(100)
_template = None


def _template_datadir():
    """One installed datadir per test process; instances get a copy of it."""
    global _template
    if _template is None:
        top = tempfile.mkdtemp(prefix="mh-mariadb-template-")
        atexit.register(shutil.rmtree, top, True)
        datadir, tmpdir = os.path.join(top, "data"), os.path.join(top, "tmp")
        os.mkdir(tmpdir)  # a private tmpdir: parallel installs collide on temporary tables in /tmp
        r = subprocess.run([INSTALL_DB, "--no-defaults", f"--datadir={datadir}",
                            f"--tmpdir={tmpdir}", "--user=root",
                            "--auth-root-authentication-method=normal", "--skip-test-db",
                            "--skip-name-resolve"] + FAST_ARGS[:2],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {r.stdout[-2000:]} {r.stderr[-2000:]}")
        _template = datadir
    return _template


class MariaDB:
    """One mariadbd process. Root logs in over the unix socket without a password."""

    def __init__(self, basedir, name="db", extra_args=(), log_bin=True):
        self.name = name
        self.dir = os.path.join(basedir, name)
        self.datadir = os.path.join(self.dir, "data")
        self.socket = os.path.join(self.dir, "mysqld.sock")
        if len(self.socket) > 100:  # sun_path holds 108 bytes; pytest's tmp_path can be long
            short = tempfile.mkdtemp(prefix="mhdb-")
            atexit.register(shutil.rmtree, short, True)
            self.socket = os.path.join(short, "mysqld.sock")
        self.log_path = os.path.join(self.dir, "error.log")
        self.host = "127.0.0.1"
        self.port = free_port(self.host)
        self.server_id = next(_server_ids)
        self.extra_args = list(extra_args)
        self.log_bin = log_bin
        self.proc = None
        self.tmpdir = os.path.join(self.dir, "tmp")
        os.makedirs(self.tmpdir, exist_ok=True)
        shutil.copytree(_template_datadir(), self.datadir)

    # ---- lifecycle ----

    def command(self):
        args = [MARIADBD, "--no-defaults", "--user=root", f"--datadir={self.datadir}",
                f"--socket={self.socket}", f"--port={self.port}", f"--bind-address={self.host}",
                f"--pid-file={os.path.join(self.dir, 'mysqld.pid')}",
                f"--log-error={self.log_path}", f"--tmpdir={self.tmpdir}",
                f"--server-id={self.server_id}"] + FAST_ARGS
        if self.log_bin:
            args += [f"--log-bin={os.path.join(self.dir, 'binlog')}", "--binlog-format=ROW"]
        return args + self.extra_args

    def start(self, timeout=30.0):
        if self.running():
            return self
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_until(self._answers, timeout, f"mariadb {self.name} to accept connections")
        return self

    def _answers(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"mariadbd {self.name} exited {self.proc.returncode}: "
                                 f"{self.error_log()[-2000:]}")
        try:
            self.sql("SELECT 1")
            return True
        except pymysql.err.OperationalError:
            return False

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30.0):
        """Clean shutdown (SIGTERM); SIGKILL if it does not finish in time."""
        if not self.running():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self):
        """Crash stop: SIGKILL, no shutdown."""
        if self.running():
            self.proc.kill()
            self.proc.wait()

    def restart(self, timeout=30.0):
        self.stop(timeout)
        return self.start(timeout)

    def error_log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # ---- SQL ----

    def connect(self, user="root", password="", database=None, tcp=False, **kw):
        """A new pymysql connection; root over the unix socket unless tcp=True."""
        kw.setdefault("connect_timeout", 5)
        kw.setdefault("autocommit", True)
        if tcp:
            return pymysql.connect(host=self.host, port=self.port, user=user, password=password,
                                   database=database, **kw)
        return pymysql.connect(unix_socket=self.socket, user=user, password=password,
                               database=database, **kw)

    def sql(self, statement, args=None):
        """Runs one statement as root; returns all rows as tuples."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(statement, args)
                return cur.fetchall()
        finally:
            conn.close()

    def value(self, statement, args=None):
        rows = self.sql(statement, args)
        return rows[0][0] if rows else None

    def create_database(self, name):
        self.sql(f"CREATE DATABASE IF NOT EXISTS `{name}`")

    def create_user(self, user, password, grants=(), host="%"):
        """CREATE USER plus each grant, e.g. "SELECT, INSERT ON magento_healthd.*"."""
        self.sql("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (user, host, password))
        for g in grants:
            self.sql(f"GRANT {g} TO %s@%s", (user, host))

    def add_healthd_user(self, password, user="healthd", database="magento_healthd",
                         grants=None):
        """magento-healthd's own least-privilege user and schema, as README documents them."""
        self.create_database(database)
        self.create_user(user, password,
                         grants or [f"SELECT, INSERT, UPDATE, CREATE ON `{database}`.*"])

    def healthd_keys(self, password_file, user="healthd"):
        """Key lines for a [check.NAME] type = mysql section that reach this server over TCP."""
        return (f"host = {self.host}\nport = {self.port}\nuser = {user}\n"
                f"password_file = {password_file}\n")

    def connections_of(self, user):
        """How many server threads belong to `user` right now."""
        return self.value("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = %s",
                          (user,))

    def set_read_only(self, on=True):
        self.sql(f"SET GLOBAL read_only = {'ON' if on else 'OFF'}")

    # ---- replication ----

    def replicate_from(self, primary, user="repl", password="repl-pw", timeout=30.0):
        """Makes this server a read-only replica of `primary` (GTID, from the primary's first
        binlog) and waits until both replication threads run."""
        primary.create_user(user, password, ["REPLICATION SLAVE ON *.*"])
        self.set_read_only(True)
        self.sql("STOP SLAVE")
        self.sql("RESET SLAVE ALL")
        self.sql("SET GLOBAL gtid_slave_pos = ''")
        self.sql(f"CHANGE MASTER TO MASTER_HOST='{primary.host}', MASTER_PORT={primary.port}, "
                 f"MASTER_USER='{user}', MASTER_PASSWORD=%s, MASTER_USE_GTID=slave_pos,"
                 f" MASTER_CONNECT_RETRY=1", (password,))
        self.start_replication(timeout)
        return self

    def replication_status(self):
        """SHOW SLAVE STATUS as a dict, or None when this server is no replica."""
        conn = self.connect(cursorclass=pymysql.cursors.DictCursor)
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW SLAVE STATUS")
                return cur.fetchone()
        finally:
            conn.close()

    def start_replication(self, timeout=30.0):
        self.sql("START SLAVE")

        def running():
            st = self.replication_status()
            if st and (st.get("Last_IO_Error") or st.get("Last_SQL_Error")):
                raise AssertionError(f"replication error on {self.name}: {st['Last_IO_Error']}"
                                     f" {st['Last_SQL_Error']}")
            return st and st["Slave_IO_Running"] == "Yes" and st["Slave_SQL_Running"] == "Yes"
        wait_until(running, timeout, f"replication threads on {self.name}")

    def stop_replication(self):
        self.sql("STOP SLAVE")

    def wait_caught_up(self, primary, timeout=30.0):
        """Waits until this replica has applied everything `primary` has binlogged so far."""
        pos = primary.value("SELECT @@gtid_binlog_pos")
        got = self.value("SELECT MASTER_GTID_WAIT(%s, %s)", (pos, timeout))
        if got != 0:
            raise AssertionError(f"{self.name} did not catch up to {pos} within {timeout}s")

    def promote(self):
        """Turns a replica into a writable primary (what a cross-region failover does)."""
        self.sql("STOP SLAVE")
        self.sql("RESET SLAVE ALL")
        self.set_read_only(False)


class MariaDBFactory:
    """Starts MariaDB instances under one directory and stops all of them at the end."""

    def __init__(self, basedir):
        self.basedir = basedir
        self.instances = []
        self._names = itertools.count(1)

    def new(self, name=None, start=True, **kw):
        db = MariaDB(self.basedir, name or f"db{next(self._names)}", **kw)
        self.instances.append(db)
        if start:
            db.start()
        return db

    def stop_all(self):
        for db in reversed(self.instances):
            try:
                db.stop()
            except Exception:  # noqa: BLE001 - keep stopping the others
                db.kill()
