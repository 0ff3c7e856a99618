"""The opensearch check (issue 13) against a stand-in cluster (tests/svc_opensearch.py).

Debian 12 ships no OpenSearch or Elasticsearch and nothing may be downloaded, so the tests run the
real daemon against a Python http.server that replays the documented API: the _cluster/health
bodies, the alias look-ups, the 401/403/404 bodies, real HTTP/1.1 keep-alive, TLS with a CA made
here with the openssl tool, basic auth and AWS SigV4 signatures. It misbehaves on demand, and each
fault must give a clear failure within the check's timeout, with probes still fast and never more
than one connection open from the daemon.
"""
import os
import re
import socket
import subprocess
import threading
import time

import pytest

from harness import BINARY, entry, wait_until
from netns import SwallowingResolverNetns
from svc_opensearch import OpenSearchStandIn, SigV4Keys
from tlsfiles import make_tls_files

PASSWORD = "Os-9q7-correct-horse"  # must never show up in any output
WRONG = "Wr0ng-battery-staple"
INTERVAL, TIMEOUT = 0.2, 0.5
FAST = "interval = 200ms\ntimeout = 500ms\nrise = 1\nfall = 1\n"
SLACK = 0.25  # scheduling slack on a check's own timeout


@pytest.fixture
def standin():
    """Factory: standin(**options) starts an OpenSearchStandIn; all are stopped afterwards."""
    made = []

    def make(start=True, **kw):
        srv = OpenSearchStandIn(**kw)
        made.append(srv)
        return srv.start() if start else srv
    yield make
    for srv in made:
        srv.stop()


@pytest.fixture
def pwfile(tmp_path):
    p = tmp_path / "search.pw"
    p.write_text(PASSWORD + "\n")
    return p


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, a server certificate for localhost and 127.0.0.1, one for another name (same CA), and
    an unrelated CA, made with the openssl tool."""
    return make_tls_files(tmp_path_factory.mktemp("tls"), "DNS:localhost,IP:127.0.0.1",
                          "DNS:search.example.test")


def section(name, srv, extra="", pw=None, where=None):
    auth = f"username = magento\npassword_file = {pw}\n" if pw else ""
    return (f"[check.{name}]\ntype = opensearch\n{where or srv.base_keys()}{auth}{FAST}{extra}\n")




def runs(h, name, count, timeout=10):
    """Entries of `count` successive runs of `name` (told apart by their time)."""
    seen = {}

    def enough():
        e = entry(h, name)
        if "time" in e:
            seen.setdefault(e["time"], e)
        return len(seen) >= count
    wait_until(enough, timeout, f"{count} runs of {name}")
    return list(seen.values())


def tcp_connections_to(pid, port):
    """TCP sockets process `pid` has open to `port`, counted on the client side (as in
    test_mysql.py), by distinct inode: a read of /proc/net/tcp while sockets come and go can list
    the same socket twice."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
                    found.add(fields[9])
    return len(found)


def bodies_and_log(h):
    return "".join(h.get(p).body for p in ("/healthcheck", "/healthcheck/region", "/metrics")) + h.log()


def test_green_over_tls_by_name_keeps_one_connection(healthd, standin, pwfile, certs):
    srv = standin(tls=(certs / "server.pem", certs / "server.key"), users={"magento": PASSWORD})
    where = f"host = https://localhost\nport = {srv.port}\ntls_ca = {certs / 'ca.pem'}\n"
    h = healthd(section("search", srv, pw=pwfile, where=where))
    conn = h.check("/healthcheck", "search:connectivity", status="pass")
    assert conn["componentType"] == "datastore" and conn["observedUnit"] == "ms"
    assert 0 < conn["observedValue"] < TIMEOUT * 1000 and conn["output"].startswith("HTTP 200 in ")
    assert conn["affects"] == ["node", "region", "standby"]
    assert conn["details"]["endpoint"] == f"https://localhost:{srv.port}"
    cluster = h.check("/healthcheck", "search:cluster", status="pass")
    assert cluster["output"].startswith("green: cluster opensearch-cluster, 2 nodes (2 data)")
    assert cluster["observedValue"] == 100 and cluster["observedUnit"] == "%"
    assert cluster["affects"] == ["region", "standby"]
    index = h.check("/healthcheck", "search:index", status="pass")
    assert index["output"] == "catalog index magento2_product_1 present"
    assert index["affects"] == ["node", "region", "standby"]
    assert h.get("/healthcheck").status == 200 and h.get("/healthcheck/region").status == 200
    # Keep-alive: one connection, reused by every request of every run.
    later = runs(h, "search:connectivity", 6)
    assert all(e["details"]["connects"] == "1" for e in later[1:]), later
    assert "reused connection" in later[-1]["output"]
    assert srv.connections == 1 and tcp_connections_to(h.proc.pid, srv.port) == 1
    assert ("HEAD", "/magento2_product_1") in srv.requests
    assert PASSWORD not in bodies_and_log(h)


def test_yellow_warns_by_default_and_can_pass_or_fail(healthd, standin):
    srv = standin(dialect="elasticsearch")
    srv.health = "yellow"
    h = healthd(section("default", srv) + section("lenient", srv, "yellow = pass\n") +
                section("strict", srv, "yellow = fail\n"))
    e = h.check("/healthcheck", "default:cluster", status="warn")
    assert e["output"].startswith("yellow: replica shards unassigned; cluster testcluster, 1 node")
    assert e["observedValue"] == 50 and e["details"]["unassigned_shards"] == "1"
    h.check("/healthcheck", "lenient:cluster", status="pass")
    h.check("/healthcheck", "strict:cluster", status="fail", output_contains="yellow:")
    # The cluster's colour is a region matter: the node keeps serving.
    assert h.get("/healthcheck").status == 200
    h.wait_status("/healthcheck/region", 503, body_contains="strict:cluster")


def test_red_and_timed_out_fail_the_region_not_the_node(healthd, standin):
    srv = standin()
    h = healthd(section("search", srv))
    h.check("/healthcheck", "search:cluster", status="pass")
    srv.health = "red"
    e = h.check("/healthcheck", "search:cluster", status="fail", output_contains="red:")
    assert "4 unassigned" in e["output"] and 66 < e["observedValue"] < 67, e
    h.wait_status("/healthcheck/region", 503, body_contains="search:cluster")
    assert h.get("/healthcheck").status == 200
    srv.health = "timed_out"
    e = h.check("/healthcheck", "search:cluster", status="fail", output_contains="timed out:")
    assert entry(h, "search:connectivity")["output"].startswith("HTTP 408 in ")
    srv.health = "green"
    h.check("/healthcheck", "search:cluster", status="pass")
    h.wait_status("/healthcheck/region", 200)


def test_behind_a_path_with_no_cluster_manager(healthd, standin):
    """A cluster behind a reverse-proxy path; when it has no elected cluster manager, the health
    request fails with its 503 reason, while the round trip and the aliases still work."""
    srv = standin(base="/search")
    h = healthd(section("search", srv))
    e = h.check("/healthcheck", "search:cluster", status="pass")
    assert e["details"]["endpoint"] == f"http://127.0.0.1:{srv.port}/search"
    assert ("HEAD", "/search/magento2_product_1") in srv.requests
    srv.health = "no_cluster_manager"
    e = h.check("/healthcheck", "search:cluster", status="fail", output_contains="http 503:")
    assert e["output"] == ("http 503: GET /search/_cluster/health: "
                           "cluster_manager_not_discovered_exception"), e
    assert entry(h, "search:connectivity")["output"].startswith("HTTP 503 in ")
    assert entry(h, "search:index")["status"] == "pass"


def test_missing_alias_fails_node_and_region(healthd, standin):
    srv = standin(stores=(1, 2))
    srv.aliases.discard("magento2_product_2")
    h = healthd(section("search", srv, "stores = 1, 2\n") +
                section("prefixed", srv, "index_prefix = shop\n"))
    e = h.check("/healthcheck", "search:index", status="fail")
    assert e["output"] == "catalog index magento2_product_2 missing", e
    e = h.check("/healthcheck", "prefixed:index", status="fail")
    assert e["output"] == "catalog index shop_product_1 missing", e
    h.wait_status("/healthcheck", 503, body_contains="search:index")
    assert h.get("/healthcheck/region").status == 503
    srv.aliases.add("magento2_product_2")  # a reindex put the alias back
    e = h.check("/healthcheck", "search:index", status="pass")
    assert e["output"] == "catalog indexes magento2_product_1, magento2_product_2 present"


@pytest.mark.parametrize("dialect, reason", [
    ("opensearch", "auth: http 401: GET /_cluster/health: Unauthorized"),
    ("elasticsearch", "auth: http 401: GET /_cluster/health: security_exception: unable to "
                      "authenticate user [magento] for REST request [/_cluster/health]"),
])
def test_wrong_password_is_an_auth_failure_without_the_password(healthd, standin, tmp_path,
                                                                 dialect, reason):
    srv = standin(users={"magento": PASSWORD, "reader": PASSWORD}, forbidden={"reader"},
                  dialect=dialect)
    wrong = tmp_path / "wrong.pw"
    wrong.write_text(WRONG + "\n")
    right = tmp_path / "right.pw"
    right.write_text(PASSWORD + "\n")
    h = healthd(section("wrong", srv, pw=wrong) +
                f"[check.forbidden]\ntype = opensearch\n{srv.base_keys()}username = reader\n"
                f"password_file = {right}\n{FAST}")
    for m in ("connectivity", "cluster", "index"):
        e = h.check("/healthcheck", f"wrong:{m}", status="fail", output_contains="auth:")
        assert e["output"] == reason, e
    e = h.check("/healthcheck", "forbidden:connectivity", status="fail", output_contains="auth:")
    assert e["output"].startswith("auth: http 403: GET /_cluster/health: security_exception: "
                                  "no permissions for [cluster:monitor/health]"), e
    text = bodies_and_log(h)
    assert WRONG not in text and PASSWORD not in text


def test_a_server_that_echoes_the_password_is_scrubbed(healthd, standin, pwfile):
    """A 403 body quoting the password across the point where outputs are cut: no part of it may
    show, neither whole nor the first half that a cut before the scrub would leave."""
    srv = standin(users={"magento": PASSWORD}, forbidden={"magento"}, leak=True)
    h = healthd(section("search", srv, pw=pwfile))
    e = h.check("/healthcheck", "search:connectivity", status="fail", output_contains="auth:")
    assert "password [" in e["output"] or e["output"].endswith("."), e
    text = bodies_and_log(h)
    assert PASSWORD[:8] not in text, e["output"]


def test_tls_wrong_ca_or_wrong_name_fails_with_the_tls_stage(healthd, standin, certs):
    good = standin(tls=(certs / "server.pem", certs / "server.key"))
    other = standin(tls=(certs / "other.pem", certs / "other.key"))
    h = healthd(section("wrongca", good, f"tls_ca = {certs / 'wrong-ca.pem'}\n") +
                section("wrongname", other, f"tls_ca = {certs / 'ca.pem'}\n",
                        where=f"url = https://localhost:{other.port}\n") +
                section("noverify", other, "tls_verify = no\n",
                        where=f"url = https://localhost:{other.port}\n"))
    e = h.check("/healthcheck", "wrongca:connectivity", status="fail", output_contains="tls:")
    assert "certificate" in e["output"], e
    e = h.check("/healthcheck", "wrongname:connectivity", status="fail", output_contains="tls:")
    assert "localhost" in e["output"], e  # the certificate names another host
    h.check("/healthcheck", "noverify:index", status="pass")


FAULTS = [
    # fault, the measurement that shows it, its whole output (a regular expression)
    ("hang", "connectivity",
     r"http: timed out after \d+ ms without a complete answer \(GET /_cluster/health\)"),
    ("trickle", "connectivity",
     r"http: timed out after \d+ ms without a complete answer \(GET /_cluster/health\)"),
    ("huge", "connectivity", r"parse: body over 64 KiB \(GET /_cluster/health\)"),
    ("huge_chunked", "connectivity", r"parse: body over 64 KiB \(GET /_cluster/health\)"),
    ("invalid_json", "cluster",
     r"parse: health reply is not JSON: .+ \(GET /_cluster/health\)"),
    ("drop", "connectivity",
     r"http: transfer closed with \d+ bytes remaining to read \(GET /_cluster/health\)"),
]


@pytest.mark.parametrize("fault, measurement, says", FAULTS, ids=[f[0] for f in FAULTS])
def test_fault_is_bounded_clear_and_leaks_no_connection(healthd, standin, fault, measurement,
                                                        says):
    srv = standin()
    h = healthd(section("search", srv))
    h.check("/healthcheck", "search:index", status="pass")
    most = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            most[0] = max(most[0], tcp_connections_to(h.proc.pid, srv.port))
            time.sleep(0.005)
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        srv.fault = fault
        h.check("/healthcheck", f"search:{measurement}", status="fail", timeout=5)
        for e in runs(h, f"search:{measurement}", 3):
            assert e["status"] == "fail" and re.fullmatch(says, e["output"]), e
            assert e["duration"] <= TIMEOUT + SLACK, e
            r = h.get("/healthcheck")
            assert r.elapsed < 0.1, r.elapsed
        if fault == "invalid_json":  # the round trip itself worked, and the aliases are there
            assert entry(h, "search:connectivity")["status"] == "pass"
            assert entry(h, "search:index")["status"] == "pass"
        srv.fault = None
        h.check("/healthcheck", "search:cluster", status="pass", timeout=5)
        h.check("/healthcheck", "search:index", status="pass", timeout=5)
    finally:
        stop.set()
        sampler.join()
    assert most[0] <= 1, f"{most[0]} connections open at once"
    assert tcp_connections_to(h.proc.pid, srv.port) == 1
    assert h.poll_alive()


class SilentPeers:
    """Two TCP listeners on 127.0.0.1: `silent` accepts connections and never sends a byte (a
    hung node, or a TLS port that never answers the handshake); `full` never accepts and has its
    backlog filled, so that new connections hang in the handshake (a blackholed address)."""

    def __init__(self):
        self.silent = socket.create_server(("127.0.0.1", 0))
        self.held = []
        self.full = socket.create_server(("127.0.0.1", 0), backlog=0)
        self.fillers = []
        for _ in range(8):  # more than the queue of a backlog of 0 takes
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(self.full.getsockname())
            self.fillers.append(c)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                self.held.append(self.silent.accept()[0])
            except OSError:
                return

    def close(self):
        self.silent.close()
        self.full.close()
        for s in self.held + self.fillers:
            s.close()


def test_silent_peers_fail_each_stage_within_the_timeout(healthd):
    peers = SilentPeers()
    try:
        silent, full = peers.silent.getsockname()[1], peers.full.getsockname()[1]
        h = healthd(f"[check.blackhole]\ntype = opensearch\nurl = http://127.0.0.1:{full}\n{FAST}"
                    f"[check.notls]\ntype = opensearch\nurl = https://127.0.0.1:{silent}\n{FAST}"
                    f"[check.mute]\ntype = opensearch\nurl = http://127.0.0.1:{silent}\n{FAST}")
        for name, pattern in (("blackhole", rf"connect: no connection to 127.0.0.1:{full} within "
                                            r"\d+ ms"),
                              ("notls", rf"tls: no TLS handshake with 127.0.0.1:{silent} within "
                                        r"\d+ ms"),
                              ("mute", r"http: timed out after \d+ ms without a complete answer "
                                       r"\(GET /_cluster/health\)")):
            e = h.check("/healthcheck", f"{name}:connectivity", status="fail")
            assert re.fullmatch(pattern, e["output"]), e
            assert e["duration"] <= TIMEOUT + SLACK, e
        assert h.get("/healthcheck").elapsed < 0.1
    finally:
        peers.close()


def test_name_resolution_is_bounded_by_the_timeout(healthd, standin, tmp_path):
    """In a namespace whose resolver swallows every query, a name the resolver is asked about ends
    the run at its deadline with a clear reason, one lookup per check however many runs hang; a
    name from the namespace's hosts file reaches a stand-in there, TLS-free and pinned by name."""
    hanging = "search.unresolvable.mh.test"
    ns = SwallowingResolverNetns(str(tmp_path / "netns"), hosts={"search.mh.test": "127.0.0.1"})
    try:
        srv = standin(start=False)
        with ns.inside():
            srv.start()
        h = healthd(f"[check.hung]\ntype = opensearch\nhost = {hanging}\ninterval = 1s\n"
                    f"timeout = 1s\n[check.named]\ntype = opensearch\nhost = search.mh.test\n"
                    f"port = {srv.port}\n{FAST}", start=False)
        ns.host(h).start()
        started = time.monotonic()
        e = h.check("/healthcheck", "hung:connectivity", status="fail", timeout=1 + 1 + 1)
        assert e["output"] == f"connect: timed out resolving {hanging} (no answer from DNS in time)"
        assert e["duration"] <= 1 + SLACK, e
        assert time.monotonic() - started <= 1 + 1 + 0.75  # warm-up below 1 s + timeout
        assert entry(h, "hung:index")["output"] == e["output"]
        named = h.check("/healthcheck", "named:index", status="pass")
        assert named["details"]["endpoint"] == f"http://search.mh.test:{srv.port}"
        # Later runs wait on the same lookup: the daemon's threads do not grow run after run.
        first = len(os.listdir(f"/proc/{h.proc.pid}/task"))
        for e in runs(h, "hung:connectivity", 4):
            assert "timed out resolving" in e["output"] and e["duration"] <= 1 + SLACK, e
            assert h.get("/healthcheck/live").elapsed < 0.1
        assert len(os.listdir(f"/proc/{h.proc.pid}/task")) <= first + 1
    finally:
        ns.stop()


def write_credentials(path, profile, keys):
    text = (f"# written by the test\n[default]\naws_access_key_id = AKIAOTHERPROFILE\n"
            f"aws_secret_access_key = not-this-one\n\n[{profile}]\n"
            f"aws_access_key_id = {keys.key_id}\naws_secret_access_key = {keys.secret}\n")
    if keys.token:
        text += f"aws_session_token = {keys.token}\n"
    path.write_text(text)


def test_aws_sigv4_signs_with_environment_or_file_keys(healthd, standin, tmp_path):
    keys = SigV4Keys("AKIAHEALTHDTEST0001", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                     token="FwoGZXIvYXdzEXAMPLETOKEN//////////wEaDEXAMPLE", region="eu-west-1")
    srv = standin(sigv4=keys)
    creds = tmp_path / "aws-credentials"
    write_credentials(creds, "search", SigV4Keys(keys.key_id, "a-wrong-secret-key", keys.token))
    h = healthd(section("env", srv, "aws_sigv4 = es:eu-west-1\n") +
                section("file", srv, f"aws_sigv4 = es:eu-west-1\naws_credentials_file = {creds}\n"
                                     "aws_profile = search\n"),
                env={"AWS_ACCESS_KEY_ID": keys.key_id, "AWS_SECRET_ACCESS_KEY": keys.secret,
                     "AWS_SESSION_TOKEN": keys.token})
    h.check("/healthcheck", "env:cluster", status="pass")
    h.check("/healthcheck", "env:index", status="pass")  # HEAD is signed too
    e = h.check("/healthcheck", "file:connectivity", status="fail", output_contains="auth:")
    assert e["output"].startswith("auth: http 403: GET /_cluster/health: The request signature "
                                  "we calculated does not match"), e
    write_credentials(creds, "search", keys)  # rotated in place: picked up without a reload
    h.check("/healthcheck", "file:index", status="pass")
    text = bodies_and_log(h)
    assert keys.secret not in text and keys.token not in text and "a-wrong-secret" not in text


@pytest.mark.parametrize("body, key", [
    ("url = http://127.0.0.1:9200\nhost = 127.0.0.1\n", "url"),
    ("url = ftp://127.0.0.1/\n", "url"),
    ("url = http://magento:pw@127.0.0.1:9200\n", "url"),
    ("url = http://127.0.0.1:9200/?pretty\n", "url"),
    ("host = bad_host!\n", "host"),
    ("port = 0\n", "port"),
    ("password = hunter2-inline\n", "password"),
    ("username = magento\n", "username"),
    ("tls_ca = /etc/ssl/certs/ca-certificates.crt\n", "tls_ca"),
    ("index_prefix = Magento2\n", "index_prefix"),
    ("stores = 1, x\n", "stores"),
    ("stores = 1, 1\n", "stores"),
    ("stores = 0\n", "stores"),
    ("yellow = maybe\n", "yellow"),
    ("aws_sigv4 = s3:us-east-1\n", "aws_sigv4"),
    ("aws_sigv4 = es:us-east-1\n", "aws_sigv4"),  # no keys in the environment
    ("aws_profile = x\n", "aws_profile"),
    ("aws_sigv4 = es:us-east-1\naws_credentials_file = /nonexistent/creds\n",
     "aws_credentials_file"),
    ("cluster_affects = everywhere\n", "cluster_affects"),
    ("nonsense = 1\n", "nonsense"),
])
def test_config_errors_name_the_key(tmp_path, body, key):
    conf = tmp_path / "bad.conf"
    conf.write_text("[server]\nlisten = 127.0.0.1:1\n\n[check.s]\ntype = opensearch\n" + body)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    r = subprocess.run([BINARY, "--test-config", "-c", str(conf)], capture_output=True, text=True,
                       timeout=10, env=env)
    assert r.returncode != 0, r
    assert f"[check.s] {key}:" in r.stderr, r.stderr
    assert "hunter2" not in r.stderr and ":pw@" not in r.stderr


def test_credentials_file_errors_never_show_a_value(tmp_path):
    creds = tmp_path / "creds"
    creds.write_text("[search]\naws_access_key_id = AKIAHEALTHDTEST0001\n"
                     "aws_secret_access_key = secret with spaces\n")
    conf = tmp_path / "bad.conf"
    conf.write_text("[server]\nlisten = 127.0.0.1:1\n\n[check.s]\ntype = opensearch\n"
                    f"aws_sigv4 = es:us-east-1\naws_credentials_file = {creds}\naws_profile = search\n")
    r = subprocess.run([BINARY, "--test-config", "-c", str(conf)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode != 0
    assert "profile search: aws_secret_access_key is empty or has spaces" in r.stderr, r.stderr
    assert "secret with" not in r.stderr and "AKIAHEALTHDTEST0001" not in r.stderr
