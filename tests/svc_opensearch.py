"""A stand-in for an OpenSearch / Elasticsearch cluster's REST API, for the opensearch check's tests.

Debian 12 ships no OpenSearch or Elasticsearch server and nothing may be downloaded, so this is
Python's http.server (ThreadingHTTPServer, HTTP/1.1 with real keep-alive) and ssl, replaying the
response bodies the OpenSearch and Elasticsearch documentation show, byte for byte where the
documentation has one:
  * GET /_cluster/health: green is the OpenSearch docs' example, yellow the Elasticsearch 7 docs'
    example; red and timed_out are the documented body with the fields such a cluster reports
    changed (timed_out comes with HTTP 408, as both servers send it: RestStatus.REQUEST_TIMEOUT);
  * HEAD /{alias} (200, or 404 without a body), GET /{alias} (the get-index form) and
    GET /_alias/{alias}, with the documented index_not_found_exception and "alias [x] missing"
    404 bodies;
  * 401: the OpenSearch security plugin's plain "Unauthorized" with its WWW-Authenticate header,
    or Elasticsearch's JSON security_exception; 403: the security plugin's "no permissions for
    [cluster:monitor/health]"; and Amazon OpenSearch Service's {"message": ...} bodies when it
    checks AWS SigV4 signatures (verified here with an independent implementation of the
    algorithm, so a wrongly signed request is refused as the service would).

It misbehaves on demand (`fault`): "hang" accepts and never answers, "trickle" answers one byte a
second, "huge" sends a 50 MB body (Content-Length), "huge_chunked" the same chunked, "invalid_json"
a truncated body, "drop" closes the connection half-way through the body. Every accepted
connection is counted, so tests can prove keep-alive.

    srv = OpenSearchStandIn(tls=(cert, key), users={"magento": "pw"}).start()
    srv.health = "yellow"; srv.aliases.discard("magento2_product_1"); srv.fault = "hang"
    srv.stop()
"""
import base64
import hashlib
import hmac
import http.server
import re
import socket
import ssl
import threading

# OpenSearch documentation, Cluster health API, "Example response".
OPENSEARCH_GREEN = """{
  "cluster_name" : "opensearch-cluster",
  "status" : "green",
  "timed_out" : false,
  "number_of_nodes" : 2,
  "number_of_data_nodes" : 2,
  "discovered_master" : true,
  "active_primary_shards" : 6,
  "active_shards" : 12,
  "relocating_shards" : 0,
  "initializing_shards" : 0,
  "unassigned_shards" : 0,
  "delayed_unassigned_shards" : 0,
  "number_of_pending_tasks" : 0,
  "number_of_in_flight_fetch" : 0,
  "task_max_waiting_in_queue_millis" : 0,
  "active_shards_percent_as_number" : 100.0
}
"""

# Elasticsearch 7 reference, Cluster health API: a single-node cluster with one replica to place.
ELASTICSEARCH_YELLOW = """{
  "cluster_name" : "testcluster",
  "status" : "yellow",
  "timed_out" : false,
  "number_of_nodes" : 1,
  "number_of_data_nodes" : 1,
  "active_primary_shards" : 1,
  "active_shards" : 1,
  "relocating_shards" : 0,
  "initializing_shards" : 0,
  "unassigned_shards" : 1,
  "delayed_unassigned_shards": 0,
  "number_of_pending_tasks" : 0,
  "number_of_in_flight_fetch": 0,
  "task_max_waiting_in_queue_millis": 0,
  "active_shards_percent_as_number": 50.0
}
"""

# The documented body as a cluster that lost its primaries reports it.
RED = (OPENSEARCH_GREEN.replace('"green"', '"red"')
       .replace('"active_primary_shards" : 6', '"active_primary_shards" : 4')
       .replace('"active_shards" : 12', '"active_shards" : 8')
       .replace('"unassigned_shards" : 0', '"unassigned_shards" : 4')
       .replace('"active_shards_percent_as_number" : 100.0',
                '"active_shards_percent_as_number" : 66.66666666666666'))

# The documented body when the health request timed out waiting on the cluster (HTTP 408).
TIMED_OUT = RED.replace('"timed_out" : false', '"timed_out" : true')

# OpenSearch 2 when no cluster manager is elected: the health request cannot be served.
NO_CLUSTER_MANAGER = ('{"error":{"root_cause":[{"type":"cluster_manager_not_discovered_exception",'
                      '"reason":null}],"type":"cluster_manager_not_discovered_exception",'
                      '"reason":null},"status":503}')

HEALTH = {
    "green": (200, OPENSEARCH_GREEN),
    "yellow": (200, ELASTICSEARCH_YELLOW),
    "red": (200, RED),
    "timed_out": (408, TIMED_OUT),
    "no_cluster_manager": (503, NO_CLUSTER_MANAGER),
}


def index_not_found(name):
    return ('{"error":{"root_cause":[{"type":"index_not_found_exception","reason":"no such index '
            f'[{name}]","resource.type":"index_or_alias","resource.id":"{name}","index_uuid":"_na_",'
            f'"index":"{name}"}}],"type":"index_not_found_exception","reason":"no such index [{name}]",'
            f'"resource.type":"index_or_alias","resource.id":"{name}","index_uuid":"_na_",'
            f'"index":"{name}"}},"status":404}}')


def es_unauthenticated(user, path):
    reason = f"unable to authenticate user [{user}] for REST request [{path}]"
    header = ('{"WWW-Authenticate":["Basic realm=\\"security\\" charset=\\"UTF-8\\"",'
              '"Bearer realm=\\"security\\"","ApiKey"]}')
    return ('{"error":{"root_cause":[{"type":"security_exception","reason":"' + reason +
            '","header":' + header + '}],"type":"security_exception","reason":"' + reason +
            '","header":' + header + '},"status":401}')


def opensearch_forbidden(user, action="cluster:monitor/health", echo=""):
    reason = (f"no permissions for [{action}] and User [name={user}, backend_roles=[], "
              f"requestedTenant=null]{echo}")
    return ('{"error":{"root_cause":[{"type":"security_exception","reason":"' + reason + '"}],'
            '"type":"security_exception","reason":"' + reason + '"},"status":403}')


AWS_BAD_SIGNATURE = ('{"message":"The request signature we calculated does not match the signature '
                     'you provided. Check your AWS Secret Access Key and signing method. Consult '
                     'the service documentation for details."}')
AWS_BAD_TOKEN = '{"message":"The security token included in the request is invalid."}'
AWS_MISSING_AUTH = '{"message":"Authorization header requires \'Credential\' parameter."}'

HUGE = 50 * 1024 * 1024
FAULTS = ("hang", "trickle", "huge", "huge_chunked", "invalid_json", "drop")
_AUTH_RE = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,"
                      r" ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$")


class SigV4Keys:
    def __init__(self, key_id, secret, token=None, region="us-east-1", service="es"):
        self.key_id, self.secret, self.token = key_id, secret, token
        self.region, self.service = region, service


def _hmac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sigv4_problem(keys, method, raw_path, headers):
    """None when the request carries a valid SigV4 signature for `keys`, else the 403 body."""
    m = _AUTH_RE.match(headers.get("Authorization", ""))
    if not m:
        return AWS_MISSING_AUTH
    key_id, date, region, service, signed, signature = m.groups()
    if key_id != keys.key_id or (headers.get("x-amz-security-token") or None) != keys.token:
        return AWS_BAD_TOKEN
    names = signed.split(";")
    if region != keys.region or service != keys.service or "host" not in names or \
            (keys.token and "x-amz-security-token" not in names):
        return AWS_BAD_SIGNATURE
    path, _, query = raw_path.partition("?")
    canonical_query = "&".join(sorted(q for q in query.split("&") if q))
    canonical_headers = "".join(f"{n}:{' '.join((headers.get(n) or '').split())}\n" for n in names)
    request = "\n".join([method, path, canonical_query, canonical_headers, signed,
                         hashlib.sha256(b"").hexdigest()])
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", headers.get("X-Amz-Date", ""), scope,
                         hashlib.sha256(request.encode()).hexdigest()])
    k = _hmac(_hmac(_hmac(_hmac(("AWS4" + keys.secret).encode(), date), region), service),
              "aws4_request")
    expected = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(expected, signature) else AWS_BAD_SIGNATURE


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # persistent connections, as OpenSearch serves them
    server_version = "standin"
    timeout = 30  # an idle keep-alive connection is closed after this

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.standin.serve(self, head=False)

    def do_HEAD(self):
        self.server.standin.serve(self, head=True)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, standin, address):
        self.standin = standin
        super().__init__(address, _Handler)

    def get_request(self):
        sock, addr = super().get_request()
        self.standin.accepted(sock)
        return sock, addr

    def finish_request(self, request, client_address):
        """TLS is set up here, on the connection's own thread, so a client that never completes
        its handshake holds up nobody else."""
        ctx = self.standin.ssl_context
        if ctx is None:
            return super().finish_request(request, client_address)
        try:
            request.settimeout(10)
            tls = ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return None
        self.standin.accepted(tls)
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            tls.close()


class OpenSearchStandIn:
    """One stand-in cluster on 127.0.0.1 (or a given address) and a free port."""

    def __init__(self, host="127.0.0.1", port=0, tls=None, users=None, forbidden=(),
                 dialect="opensearch", sigv4=None, stores=(1,), prefix="magento2", base="",
                 leak=False):
        self.host = host
        self.port = port
        self.ssl_context = None
        if tls:
            self.ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ssl_context.load_cert_chain(*tls)
        self.users = dict(users or {})  # basic auth; empty: none required
        self.forbidden = set(forbidden)  # users whose requests get 403
        self.dialect = dialect  # "opensearch" or "elasticsearch": which 401 body
        self.sigv4 = sigv4  # SigV4Keys: requests must be signed with these
        self.base = base  # a path prefix, as behind a reverse proxy: "/search"
        self.leak = leak  # 403 bodies quote the password, as a careless proxy or plugin might
        self.health = "green"
        self.aliases = {f"{prefix}_product_{s}" for s in stores}
        self.fault = None
        self.connections = 0  # TCP connections accepted so far
        self.requests = []  # (method, path) of every request answered or faulted
        self.lock = threading.Lock()
        self.release = threading.Event()  # set on stop: hung handlers return
        self.open = set()
        self.server = None
        self.thread = None

    # ---- process control ----

    def start(self):
        self.release.clear()
        self.server = _Server(self, (self.host, self.port))
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if not self.server:
            return
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            socks, self.open = list(self.open), set()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(10)
        self.server = None

    def accepted(self, sock):
        with self.lock:
            if not isinstance(sock, ssl.SSLSocket):
                self.connections += 1
            self.open = {s for s in self.open if s.fileno() >= 0}
            self.open.add(sock)

    def base_keys(self, scheme=None):
        """The url line of a [check.NAME] section pointing at this stand-in."""
        scheme = scheme or ("https" if self.ssl_context else "http")
        return f"url = {scheme}://{self.host}:{self.port}{self.base}\n"

    # ---- answering ----

    def serve(self, h, head):
        path = h.path.partition("?")[0]
        with self.lock:
            self.requests.append((h.command, path))
            fault = self.fault
        if self.base:  # outside the prefix the proxy in front has nothing
            if not path.startswith(self.base + "/"):
                return self.respond(h, 404, "Not Found", head, {}, None)
            path = path[len(self.base):]
        if fault == "hang":
            self.release.wait()
            h.close_connection = True
            return
        refusal = self.refusal(h, path)
        if refusal:
            status, body, headers = refusal
        else:
            status, body, headers = self.route(path)
        self.respond(h, status, body, head, headers, fault)

    def refusal(self, h, path):
        """(status, body, headers) when auth refuses the request, else None."""
        if self.sigv4:
            problem = sigv4_problem(self.sigv4, h.command, h.path, h.headers)
            return (403, problem, {}) if problem else None
        if not self.users:
            return None
        user, password = None, None
        auth = h.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                pass
        if user is None or self.users.get(user) != password:
            if self.dialect == "elasticsearch":
                return 401, es_unauthenticated(user or "", path), {
                    "WWW-Authenticate": 'Basic realm="security" charset="UTF-8"'}
            return 401, "Unauthorized", {"WWW-Authenticate": 'Basic realm="OpenSearch Security"'}
        if user in self.forbidden:
            echo = ""
            if self.leak:  # quoted so that its reason's 150th character falls inside it
                plain = len("security_exception: ") + len(opensearch_forbidden(user).split(
                    '"reason":"')[1].split('"')[0])
                echo = " " + "." * max(0, 150 - plain - len("  password [") - 4) + \
                    f" password [{password}]"
            return 403, opensearch_forbidden(user, echo=echo), {}
        return None

    def route(self, path):
        if path == "/_cluster/health":
            status, body = HEALTH[self.health]
            return status, body, {}
        if path.startswith("/_alias/"):
            name = path[len("/_alias/"):]
            if name in self.aliases:
                return 200, f'{{"{name}_v1":{{"aliases":{{"{name}":{{}}}}}}}}', {}
            return 404, f'{{"error":"alias [{name}] missing","status":404}}', {}
        name = path.lstrip("/")
        if name in self.aliases:  # the get-index form resolves an alias to its index
            return 200, self.index_body(name), {}
        return 404, index_not_found(name), {}

    @staticmethod
    def index_body(name):
        """GET /{alias}: the index behind it with its settings and a Magento-sized mapping (over
        64 KiB, as a product index's is). A HEAD answer carries this body's Content-Length, as
        Elasticsearch sends it, but no body."""
        fields = ",".join(f'"attribute_{i}":{{"type":"keyword"}}' for i in range(3000))
        return (f'{{"{name}_v1":{{"aliases":{{"{name}":{{}}}},"mappings":{{"properties":{{{fields}}}}},'
                '"settings":{"index":{"number_of_shards":"1","number_of_replicas":"1"}}}}')

    def respond(self, h, status, body, head, headers, fault):
        data = body.encode()
        content_type = "application/json; charset=UTF-8" if body.startswith("{") else \
            "text/plain; charset=UTF-8"
        if fault == "invalid_json" and not head and status == 200:
            data = data[:len(data) // 2]
        head_lines = [f"HTTP/1.1 {status} {h.responses.get(status, ('',))[0]}",
                      f"content-type: {content_type}"]
        head_lines += [f"{k}: {v}" for k, v in headers.items()]
        try:
            if fault in ("huge", "huge_chunked") and not head:
                return self.send_huge(h, head_lines, fault == "huge_chunked")
            raw = ("\r\n".join(head_lines + [f"content-length: {len(data)}"]) + "\r\n\r\n").encode()
            if fault == "drop" and not head:
                h.wfile.write(raw + data[:len(data) // 2])
                h.wfile.flush()
                h.close_connection = True
                h.connection.shutdown(socket.SHUT_RDWR)
                return None
            out = raw + (b"" if head else data)
            if fault == "trickle":
                return self.send_slowly(h, out)
            h.wfile.write(out)
            h.wfile.flush()
        except OSError:
            h.close_connection = True
        return None

    def send_slowly(self, h, out):
        for i in range(len(out)):
            h.wfile.write(out[i:i + 1])
            h.wfile.flush()
            if self.release.wait(1.0):
                break
        h.close_connection = True

    def send_huge(self, h, head_lines, chunked):
        chunk = b"[" + b"0," * 32767 + b"0"
        framing = "transfer-encoding: chunked" if chunked else f"content-length: {HUGE}"
        h.wfile.write(("\r\n".join(head_lines + [framing]) + "\r\n\r\n").encode())
        sent = 0
        while sent < HUGE and not self.release.is_set():
            piece = chunk[:HUGE - sent]
            h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            sent += len(piece)
        h.wfile.flush()
        h.close_connection = True
