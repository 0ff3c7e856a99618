"""A two-region Magento failover on one machine, for the test suite and for rehearsals.

Region A ("us-east-1") starts as the primary: its MariaDB is the writer, its Redis the session
master. Region B ("eu-west-1") is the standby: its MariaDB replicates A's, its Redis is a replica
of A's. Each region runs one magento-healthd with region_role = auto and the same checks:

    [check.db]             type = mysql, writer_region = any (lag behind the newest heartbeat)
    [check.redis_session]  type = redis, role = session

The steps are those of docs/failover.md's runbook: lose A's database, promote B, bring A back as
a replica of B. tests/test_region.py asserts every answer; scripts/failover-drill prints them as a
timeline. Everything runs on 127.0.0.1 in one temporary directory.
"""
import os
import time

from harness import Healthd, wait_until
from svc_mariadb import MariaDBFactory
from svc_redis import RedisServer

PASSWORD = "drill-Pw-31337"
INTERVAL_MS, TIMEOUT_MS = 200, 500
STEP_DEADLINE = (INTERVAL_MS + TIMEOUT_MS) / 1000 + 1.0  # interval + timeout, plus slack


class Region:
    def __init__(self, name, workdir):
        self.name = name
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.db = None
        self.redis = None
        self.healthd = None

    def config(self, pwfile):
        timing = f"interval = {INTERVAL_MS}ms\ntimeout = {TIMEOUT_MS}ms\n"
        return (f"[check.db]\ntype = mysql\n{self.db.healthd_keys(pwfile)}{timing}"
                f"writer_region = any\nlag_warn = 2s\nlag_fail = 5s\n\n"
                f"[check.redis_session]\ntype = redis\nrole = session\n"
                f"{self.redis.healthd_keys()}{timing}\n")

    def answer(self, path):
        """(HTTP code, body) of one of this region's endpoints, detailed view."""
        r = self.healthd.get(path)
        return r.status, r.json()


class Drill:
    def __init__(self, workdir, log=None):
        self.workdir = workdir
        self.dbs = MariaDBFactory(os.path.join(workdir, "mariadb"))
        self.a = Region("us-east-1", workdir)
        self.b = Region("eu-west-1", workdir)
        self.pwfile = os.path.join(workdir, "db.pw")
        self.log = log or (lambda line: None)
        self.t0 = time.monotonic()

    # ---- set-up and tear-down ----

    def start(self):
        with open(self.pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        a, b = self.a, self.b
        a.db = self.dbs.new(name="db-a")
        a.db.add_healthd_user(PASSWORD)
        b.db = self.dbs.new(name="db-b")
        b.db.replicate_from(a.db)
        b.db.wait_caught_up(a.db)
        a.redis = RedisServer(os.path.join(a.dir, "redis")).start()
        b.redis = RedisServer(os.path.join(b.dir, "redis"), replicaof=a.redis).start()
        b.redis.wait_replicating()
        for r in (a, b):
            r.healthd = Healthd(r.dir, r.config(self.pwfile),
                                server_extra=f"region = {r.name}\nregion_role = auto\n"
                                             "details_from = 127.0.0.1/32\n"
                                             f"node = web-{r.name}\n").start()
        return self

    def stop(self):
        for r in (self.a, self.b):
            for svc in (r.healthd, r.redis):
                if svc:
                    try:
                        svc.stop()
                    except Exception:  # noqa: BLE001 - keep stopping the rest
                        pass
        self.dbs.stop_all()

    # ---- the runbook's steps ----

    def lose_primary_database(self):
        self.a.db.stop()

    def promote_standby(self):
        """STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF; and REPLICAOF NO ONE."""
        self.b.db.promote()
        self.b.redis.promote()

    def rejoin_old_primary_as_standby(self):
        a, b = self.a, self.b
        a.db.start()
        a.db.replicate_from(b.db)
        a.redis.replicate(b.redis)
        a.redis.wait_replicating()

    # ---- observing ----

    def wait_for(self, region, path, code, role=None, deadline=STEP_DEADLINE):
        """Waits until `region`'s `path` answers `code` (and `role`); returns the body and the
        seconds it took. Logs a timeline line."""
        start = time.monotonic()

        def ok():
            got, body = region.answer(path)
            return (got == code and (role is None or body.get("role") == role)) and body
        body = wait_until(ok, deadline, f"{region.name} {path} -> {code} {role or ''}")
        took = time.monotonic() - start
        self.log(f"{time.monotonic() - self.t0:7.2f}s  {region.name:9} {path:36} {code} "
                 f"role={body.get('role', '-'):8} after {took:.2f}s"
                 f"{'  (' + body['output'] + ')' if body.get('output') else ''}")
        return body, took
