"""magento-healthd behind a real nginx, with the shipped snippets (nginx/magento-healthd.conf, and
nginx/magento-healthd-behind-varnish.conf behind a real Varnish)."""
import os

import pytest

from harness import http_get, wait_http, wait_until
from svc_nginx import Nginx
from svc_varnish import Varnish

NGINX_DIR = os.path.join(os.path.dirname(__file__), "..", "nginx")
SNIPPET = os.path.join(NGINX_DIR, "magento-healthd.conf")
VARNISH_SNIPPET = os.path.join(NGINX_DIR, "magento-healthd-behind-varnish.conf")
REALIP = ("set_real_ip_from", "real_ip_header", "real_ip_recursive")


@pytest.fixture
def stack(healthd, tmp_path):
    h = healthd(f"[check.drain]\ntype = drain\nfile = {tmp_path}/drain\ninterval = 100ms\n",
                server_extra="details_from = 127.0.0.1/32\n")
    with open(SNIPPET) as f:
        snippet = f.read().replace("127.0.0.1:8642", f"127.0.0.1:{h.port}")
    ngx = Nginx(str(tmp_path), snippet + "\nlocation / { return 200 'magento'; }\n").start()
    yield h, ngx
    ngx.stop()


def test_probes_through_nginx(stack, tmp_path):
    h, ngx = stack
    h.wait_status("/healthcheck", 200)
    for path in ["/healthcheck", "/healthcheck/node", "/healthcheck/region", "/healthcheck/live"]:
        r = wait_http("127.0.0.1", ngx.port, path, 200, source="127.0.0.2")
        assert r.body.startswith('{"status":"pass"')
        assert r.headers["content-type"] == "application/health+json"
    open(tmp_path / "drain", "w").close()
    h.wait_status("/healthcheck", 503)
    r = wait_http("127.0.0.1", ngx.port, "/healthcheck", 503, source="127.0.0.2")
    assert r.body.startswith('{"status":"fail"')
    assert http_get("127.0.0.1", ngx.port, "/healthcheck/live").status == 200
    assert http_get("127.0.0.1", ngx.port, "/healthcheck/nope").status == 404
    assert http_get("127.0.0.1", ngx.port, "/healthcheck", method="POST").status == 405
    r = http_get("127.0.0.1", ngx.port, "/healthcheck", method="HEAD")
    assert r.status == 503 and r.body == ""


def test_details_not_leaked_through_nginx(stack, tmp_path):
    h, ngx = stack
    h.wait_status("/healthcheck", 200)
    open(tmp_path / "drain", "w").close()
    h.wait_status("/healthcheck", 503)
    # nginx reaches the daemon from 127.0.0.1, inside details_from; the client is not.
    outsider = wait_http("127.0.0.1", ngx.port, "/healthcheck", 503, source="127.0.0.2")
    assert outsider.json()["checks"] == {"drain:drain": [{"status": "fail"}]}
    assert "draining" not in outsider.body
    # A forged header does not help: nginx overwrites it with the real address.
    forged = http_get("127.0.0.1", ngx.port, "/healthcheck", source="127.0.0.2",
                      headers={"X-Forwarded-For": "127.0.0.1"})
    assert "draining" not in forged.body
    # A client inside details_from still gets details through nginx.
    insider = http_get("127.0.0.1", ngx.port, "/healthcheck", source="127.0.0.1")
    assert "draining" in insider.json()["checks"]["drain:drain"][0]["output"]
    # /metrics is not exposed through the snippet.
    assert "magento_healthd" not in http_get("127.0.0.1", ngx.port, "/metrics").body


def test_probes_kept_out_of_access_log(stack):
    h, ngx = stack
    h.wait_status("/healthcheck", 200)
    for _ in range(5):
        http_get("127.0.0.1", ngx.port, "/healthcheck")
    http_get("127.0.0.1", ngx.port, "/other-page")

    def logged_other_page():
        with open(ngx.access_log) as f:
            log = f.read()
        return log if "/other-page" in log else None
    # nginx writes the log line after it sent the answer: poll. The log works ...
    log = wait_until(logged_other_page, 5, "/other-page in the access log")
    assert "/healthcheck" not in log  # ... and probes stay out of it


def snippet_for(path, port):
    with open(path) as f:
        return f.read().replace("127.0.0.1:8642", f"127.0.0.1:{port}")


@pytest.fixture
def draining(healthd, tmp_path):
    """A daemon whose only check fails with output "draining"; details only for 127.0.0.1."""
    h = healthd(f"[check.drain]\ntype = drain\nfile = {tmp_path}/drain\ninterval = 100ms\n",
                server_extra="details_from = 127.0.0.1/32\n")
    open(tmp_path / "drain", "w").close()
    h.wait_status("/healthcheck", 503)
    return h


@pytest.fixture
def behind_varnish(tmp_path):
    """Factory: a real Varnish in front of a real nginx carrying the given snippet. Returns the
    Varnish; all are stopped afterwards."""
    started = []

    def make(snippet_path, h):
        ngx = Nginx(str(tmp_path / f"n{len(started)}"), snippet_for(snippet_path, h.port))
        started.append(ngx.start())
        started.append(Varnish(str(tmp_path), ngx.port, f"varnish{len(started)}").start())
        return started[-1]
    yield make
    for svc in reversed(started):
        svc.stop()


def details(port, source, headers=None):
    """The drain check's entry as `source` sees /healthcheck through the proxies at `port`."""
    r = http_get("127.0.0.1", port, "/healthcheck", source=source, headers=headers)
    assert r.status == 503, r
    return r.json()["checks"]["drain:drain"][0]


def test_varnish_snippet_keeps_details_private(draining, behind_varnish):
    v = behind_varnish(VARNISH_SNIPPET, draining)
    wait_http("127.0.0.1", v.port, "/healthcheck", 503, source="127.0.0.2", timeout=30)
    # Varnish reaches nginx from 127.0.0.1; realip restores the visitor before nginx forwards.
    assert "draining" in details(v.port, "127.0.0.1")["output"]
    # An outsider gets the public view, also right after an insider (Varnish caches neither).
    assert details(v.port, "127.0.0.2") == {"status": "fail"}
    # A forged header stays left of the address Varnish appends.
    assert details(v.port, "127.0.0.2", {"X-Forwarded-For": "127.0.0.1"}) == {"status": "fail"}


def test_varnish_snippet_behind_tls_terminator(draining, behind_varnish, tmp_path):
    # The usual Magento chain: TLS terminator -> Varnish -> nginx, all on loopback. The terminator
    # (plain nginx here) appends the visitor; real_ip_recursive skips the loopback hops after it.
    v = behind_varnish(VARNISH_SNIPPET, draining)
    front = Nginx(str(tmp_path / "front"), f"""location / {{
        proxy_pass http://127.0.0.1:{v.port};
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}""").start()
    try:
        wait_http("127.0.0.1", front.port, "/healthcheck", 503, source="127.0.0.2", timeout=30)
        forged = {"X-Forwarded-For": "127.0.0.1"}
        assert details(front.port, "127.0.0.2", forged) == {"status": "fail"}
        assert "draining" in details(front.port, "127.0.0.1")["output"]
    finally:
        front.stop()


def test_plain_snippet_behind_varnish_would_leak(draining, behind_varnish):
    # The motivating case: the plain snippet forwards Varnish's 127.0.0.1 for every visitor.
    v = behind_varnish(SNIPPET, draining)
    wait_http("127.0.0.1", v.port, "/healthcheck", 503, source="127.0.0.2", timeout=30)
    assert "draining" in details(v.port, "127.0.0.2")["output"]


def test_varnish_snippet_is_the_plain_one_plus_realip():
    # The two snippets must not drift apart: only comments and the realip lines differ.
    def directives(path, drop=()):
        with open(path) as f:
            lines = [line.strip() for line in f]
        return [line for line in lines if line and not line.startswith(("#",) + drop)]
    assert directives(VARNISH_SNIPPET, REALIP) == directives(SNIPPET)
    assert len(directives(VARNISH_SNIPPET)) == len(directives(SNIPPET)) + 4
