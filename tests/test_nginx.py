"""magento-healthd behind a real nginx, with the shipped snippet (nginx/magento-healthd.conf)."""
import os

import pytest

from harness import http_get, wait_http, wait_until
from svc_nginx import Nginx

SNIPPET = os.path.join(os.path.dirname(__file__), "..", "nginx", "magento-healthd.conf")


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
