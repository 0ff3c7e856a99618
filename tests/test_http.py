"""HTTP layer: /metrics (validated with promtool), its gating, and X-Forwarded-For trust."""
import shutil
import socket
import subprocess

from harness import http_get

OUTSIDER = "127.0.0.2"


def conf(tmp_path):
    return (f"[check.drain]\ntype = drain\nfile = {tmp_path}/drain\ninterval = 100ms\n"
            f"[check.disk]\ntype = disk\npath = {tmp_path}\ninterval = 100ms\n")


def test_metrics_valid_and_complete(healthd, tmp_path):
    h = healthd(conf(tmp_path), server_extra="details_from = 127.0.0.1/32\n")
    h.wait_status("/healthcheck", 200)
    h.get("/healthcheck/nope")
    r = h.get("/metrics")
    assert r.status == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.body
    for needle in [
        'magento_healthd_check_status{check="drain",measurement="drain",type="drain"} 0',
        'magento_healthd_check_status{check="disk",measurement="free",type="disk"} 0',
        'magento_healthd_check_observed_value{check="disk",measurement="free",type="disk",unit="%"}',
        'magento_healthd_check_consecutive_failures{check="drain",measurement="drain",type="drain"} 0',
        'magento_healthd_check_transitions_total{check="drain",measurement="drain",type="drain"} 0',
        'magento_healthd_check_duration_seconds{check="disk",type="disk"}',
        'magento_healthd_ready{scope="node"} 1',
        'magento_healthd_ready{scope="region"} 1',
        "magento_healthd_start_time_seconds ",
        'magento_healthd_http_requests_total{path="/healthcheck",code="200"}',
        'magento_healthd_http_requests_total{path="other",code="404"} 1',
    ]:
        assert needle in text, needle
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) is required"
    p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    # A failure shows up in the counters.
    open(tmp_path / "drain", "w").close()
    h.wait_status("/healthcheck", 503)
    text = h.get("/metrics").body
    assert 'magento_healthd_check_status{check="drain",measurement="drain",type="drain"} 2' in text
    assert 'magento_healthd_check_transitions_total{check="drain",measurement="drain",type="drain"} 1' in text
    assert 'magento_healthd_ready{scope="node"} 0' in text


def test_metrics_gated(healthd, tmp_path):
    (tmp_path / "tok").write_text("metrics-token-77")
    h = healthd(conf(tmp_path), server_extra=f"details_from = 127.0.0.1/32\n"
                                             f"details_token_file = {tmp_path}/tok\n")
    assert http_get(h.host, h.port, "/metrics", source=OUTSIDER).status == 403
    r = http_get(h.host, h.port, "/metrics", source=OUTSIDER,
                 headers={"Authorization": "Bearer metrics-token-77"})
    assert r.status == 200 and "magento_healthd_ready" in r.body


def test_forwarded_for_trusted_only_from_trusted_proxies(healthd, tmp_path):
    h = healthd(conf(tmp_path), server_extra="details_from = 127.0.0.1/32, 127.0.0.3/32\n"
                                             "trusted_proxies = 127.0.0.1/32\n")
    h.wait_status("/healthcheck", 200)
    # From the trusted proxy, the forwarded client decides.
    r = h.get("/healthcheck", headers={"X-Forwarded-For": "203.0.113.9"})
    assert "output" not in r.body
    r = h.get("/healthcheck", headers={"X-Forwarded-For": "203.0.113.9, 127.0.0.3"})
    assert "output" in r.body  # the last hop is the one our proxy appended
    r = h.get("/healthcheck", headers={"X-Forwarded-For": "garbage"})
    assert "output" not in r.body  # unparseable: no trust inherited from the proxy
    # From a peer that is not a trusted proxy, the header is ignored.
    r = http_get(h.host, h.port, "/healthcheck", source="127.0.0.3",
                 headers={"X-Forwarded-For": "203.0.113.9"})
    assert "output" in r.body
    r = http_get(h.host, h.port, "/healthcheck", source=OUTSIDER,
                 headers={"X-Forwarded-For": "127.0.0.1"})
    assert "output" not in r.body


def raw_get(port, path, header_lines, timeout=5.0):
    """GET with header lines sent verbatim, repeats included, from 127.0.0.1; returns (status,
    body). The server closes after answering (Connection: close), so read to EOF."""
    head = "".join(line + "\r\n" for line in header_lines)
    req = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{head}\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                  source_address=("127.0.0.1", 0)) as s:
        s.sendall(req.encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.decode("utf-8", "replace").partition("\r\n\r\n")
    return int(head.split()[1]), body


def test_forwarded_for_repeated_lines_last_address_wins(healthd, tmp_path):
    # RFC 9110 5.3: repeated lines are one list; HAProxy's `option forwardfor` appends a line.
    h = healthd(conf(tmp_path), server_extra="details_from = 127.0.0.1/32\n"
                                             "trusted_proxies = 127.0.0.1/32\n")
    h.wait_status("/healthcheck", 200)
    xff = "X-Forwarded-For: "
    # The proxy's own line names an outsider: the public view, and /metrics refused.
    lines = [xff + "127.0.0.1", xff + "203.0.113.7"]
    status, body = raw_get(h.port, "/healthcheck", lines)
    assert status == 200 and "output" not in body
    assert raw_get(h.port, "/metrics", lines)[0] == 403
    # The same rule the other way round: the last line names an insider.
    status, body = raw_get(h.port, "/healthcheck", [xff + "203.0.113.7", xff + "127.0.0.1"])
    assert status == 200 and "output" in body
    # An empty last line leaves the combined list ending in an empty element: nobody.
    status, body = raw_get(h.port, "/healthcheck", [xff + "127.0.0.1", xff])
    assert status == 200 and "output" not in body
