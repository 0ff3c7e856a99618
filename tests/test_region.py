"""Region readiness for Route 53, and the two-region failover drill (tests/drill.py).

Each step must be seen within interval + timeout (plus a second of slack), without restarting
either magento-healthd.
"""
import pytest

from drill import Drill

REGION, STANDBY = "/healthcheck/region", "/healthcheck/region?role=standby"


@pytest.fixture
def drill(tmp_path):
    d = Drill(str(tmp_path)).start()
    yield d
    d.stop()


def test_failover_drill(drill):
    a, b = drill.a, drill.b
    pids = (a.healthd.proc.pid, b.healthd.proc.pid)

    # 1. A is ready; B is not ready for primary traffic, and is a healthy standby.
    body, _ = drill.wait_for(a, REGION, 200, role="primary", deadline=15)
    assert body["region"] == "us-east-1"
    assert list(body)[:3] == ["status", "region", "role"]  # inside Route 53's first bytes
    body, _ = drill.wait_for(b, REGION, 503, role="standby", deadline=15)
    assert "db:writable" in body["output"]
    assert "database is a read-only replica" in body["output"]
    b.healthd.check(REGION, "redis_session:writable", status="fail",
                    output_contains="session store is read-only")
    body, _ = drill.wait_for(b, STANDBY, 200, role="standby", deadline=15)
    assert body["checks"]["db:lag"][0]["status"] == "pass"
    assert b.answer("/healthcheck/region/standby")[0] == 200  # the alias path
    assert b.answer("/healthcheck")[0] == 200  # B's nodes are healthy nodes

    # 2. A's database is lost: A turns not ready.
    drill.lose_primary_database()
    drill.wait_for(a, REGION, 503)
    # The run in flight when the database went may have had its SELECT answered (it keeps that
    # answer) and lost only the write; the next run fails to connect.
    a.healthd.check(REGION, "db:connectivity", status="fail", output_contains="connect")

    # 3. B is promoted and turns ready, without a restart.
    drill.promote_standby()
    body, _ = drill.wait_for(b, REGION, 200, role="primary")
    assert body["checks"]["db:writable"][0]["status"] == "pass"
    assert body["checks"]["redis_session:writable"][0]["status"] == "pass"

    # 4. A comes back as a replica of B: standby-ready, not ready for primary traffic.
    drill.rejoin_old_primary_as_standby()
    drill.wait_for(a, STANDBY, 200, role="standby")
    body, _ = drill.wait_for(a, REGION, 503, role="standby")
    assert "read-only" in body["output"]
    # B stays the primary.
    assert b.answer(REGION)[0] == 200

    assert (a.healthd.proc.pid, b.healthd.proc.pid) == pids
    assert a.healthd.proc.poll() is None and b.healthd.proc.poll() is None


def test_public_region_body_is_short_and_starts_with_status_region_role(drill):
    from harness import wait_http
    a = drill.a
    drill.wait_for(a, REGION, 200, role="primary", deadline=15)
    # A client outside details_from gets statuses only; the status, region and role lead.
    r = wait_http(a.healthd.host, a.healthd.port, REGION, 200, source="127.0.0.2")
    assert r.body.startswith('{"status":"pass","region":"us-east-1","role":"primary"')
    assert len(r.body) < 5120
    assert "output" not in r.body
