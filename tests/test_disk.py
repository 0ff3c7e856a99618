"""Disk check integration tests: thresholds, a full tmpfs, a read-only mount, and a hung
filesystem (fsfreeze) that turns the check stale while probes stay fast.

Mounting needs root, as in CI. Outside CI, without root, those tests skip; in CI they must run.
"""
import http.client
import json
import os
import re
import subprocess
import time

import pytest


IN_CI = os.environ.get("CI") == "true"
requires_root = pytest.mark.skipif(os.geteuid() != 0 and not IN_CI, reason="mounting needs root")


# A 1 s timeout by default: the write probe's fsync on a busy disk can take over 100 ms, and a
# run over its timeout fails. The hung-filesystem test asks for 100 ms itself.
def disk_conf(path, extra="", interval="150ms", timeout="1s"):
    return (f"[check.disk]\ntype = disk\npath = {path}\ninterval = {interval}\n"
            f"timeout = {timeout}\n{extra}\n")


def test_pass_reports_free_percentage(healthd, tmp_path):
    h = healthd(disk_conf(tmp_path))
    h.wait_status("/healthcheck", 200)
    e = h.check("/healthcheck", "disk:free", status="pass")
    assert e["observedUnit"] == "%" and 0 < e["observedValue"] <= 100
    assert str(tmp_path) in e["output"] and "inodes" in e["output"]


def test_thresholds_trip(healthd, tmp_path):
    h = healthd(disk_conf(tmp_path, "space_warn = 100%\nspace_fail = 0%"))
    h.check("/healthcheck", "disk:free", status="warn")
    h.wait_status("/healthcheck", 200)  # warn keeps the node in service
    h.stop()
    h = healthd(disk_conf(tmp_path, "space_fail = 100%"))
    h.check("/healthcheck", "disk:free", status="fail")
    assert h.get("/healthcheck").status == 503
    h.stop()
    h = healthd(disk_conf(tmp_path, "space_fail = 1T\nspace_warn = 2T"))  # absolute sizes
    assert h.check("/healthcheck", "disk:free", status="fail")


@pytest.fixture
def mountpoint(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    yield mnt
    subprocess.run(["fsfreeze", "-u", str(mnt)], capture_output=True)
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@requires_root
def test_full_tmpfs_fails_and_recovers(healthd, mountpoint):
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,nr_inodes=200", "tmpfs",
                    str(mountpoint)], check=True)
    h = healthd(disk_conf(mountpoint, "space_fail = 10%\nspace_warn = 20%"))
    h.check("/healthcheck", "disk:free", status="pass")
    filler = mountpoint / "filler"
    with open(filler, "wb") as f:
        try:
            f.write(b"\0" * (2 * 1024 * 1024))
        except OSError:
            pass
    e = h.check("/healthcheck", "disk:free", status="fail")
    assert e["observedValue"] < 10
    assert h.get("/healthcheck").status == 503
    os.unlink(filler)
    h.check("/healthcheck", "disk:free", status="pass")
    # Inodes: fill the inode table with empty files.
    for i in range(400):
        try:
            open(mountpoint / f"f{i}", "w").close()
        except OSError:
            break
    e = h.check("/healthcheck", "disk:free", status="fail")
    assert "inodes" in e["output"]


@requires_root
def test_read_only_mount_fails_write_probe(healthd, mountpoint):
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(mountpoint)],
                   check=True)
    h = healthd(disk_conf(mountpoint))
    e = h.check("/healthcheck", "disk:free", status="fail")
    assert "write probe failed at create" in e["output"] and "Read-only" in e["output"]
    h.stop()
    h = healthd(disk_conf(mountpoint, "write_probe = no"))
    h.check("/healthcheck", "disk:free", status="pass")


@requires_root
def test_hung_filesystem_goes_stale_while_probes_stay_fast(healthd, tmp_path, mountpoint):
    image = tmp_path / "fs.img"
    subprocess.run(["truncate", "-s", "16M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mountpoint)], check=True)
    # Frozen before the daemon starts: the first run hangs, readiness says "starting".
    subprocess.run(["fsfreeze", "-f", str(mountpoint)], check=True)
    h = healthd(disk_conf(mountpoint, interval="200ms", timeout="100ms")
                + "\n[check.drain]\ntype = drain\nfile = " + str(tmp_path / "drain") + "\n"
                + "interval = 100ms\n")
    r = h.wait_status("/healthcheck", 503)
    assert r.json()["output"] == "starting"
    subprocess.run(["fsfreeze", "-u", str(mountpoint)], check=True)
    h.check("/healthcheck", "disk:free", status="pass")
    h.wait_status("/healthcheck", 200)
    # Freeze again: the write probe blocks inside fsync/creat; after max_age (3 x 200 ms) the
    # result is stale and the node fails, while every probe is still answered at once.
    subprocess.run(["fsfreeze", "-f", str(mountpoint)], check=True)
    slowest = 0.0
    deadline = time.monotonic() + 10
    while True:
        r = h.get("/healthcheck")
        slowest = max(slowest, r.elapsed)
        entry = r.json()["checks"]["disk:free"][0]
        if entry["status"] == "fail" and entry["output"].startswith("stale"):
            break
        assert time.monotonic() < deadline, "never went stale"
        time.sleep(0.02)
    assert r.status == 503
    assert slowest < 0.1, f"a probe took {slowest:.3f}s while the check hung"
    # From pass, or from fail when a run that was cut short by the freeze timed out first.
    assert re.search(r"disk:free: (pass|fail) -> fail: no result for [0-9.]+ m?s \(max_age [0-9.]+ m?s\)", h.log()), h.log()
    # Other checks keep running: the drain check still reports fresh results.
    assert h.get("/healthcheck").json()["checks"]["drain:drain"][0]["age"] < 1.0
    subprocess.run(["fsfreeze", "-u", str(mountpoint)], check=True)
    h.check("/healthcheck", "disk:free", status="pass")
    h.wait_status("/healthcheck", 200)


def raw_json(h, path):
    """GET `path` and parse it as strict UTF-8 JSON (http_get would hide bad bytes)."""
    conn = http.client.HTTPConnection(h.host, h.port, timeout=5)
    try:
        conn.request("GET", path)
        return json.loads(conn.getresponse().read().decode("utf-8"))
    finally:
        conn.close()


def disk_summary(paths):
    """check_disk's output for paths that all fail statvfs with ENOENT: their parts joined by
    "; " and cut at 255 bytes, as its fixed buffer does, whatever that cut falls on."""
    out = b""
    for p in paths:
        part = f"{p}: statvfs: No such file or directory".encode()
        if out and len(out) + 2 < 256:
            out += b"; "
        out += part[:255 - len(out)]
    return out


def test_non_utf8_and_long_paths_keep_their_output(healthd, tmp_path):
    """A path that is not UTF-8 (Latin-1 "café"), and paths of multibyte characters whose joined
    output crosses the 255-byte cut in the middle of a "€": the body stays valid JSON and every
    output is there, per check and top-level; bad bytes show as U+FFFD and the cut falls before
    the character that did not fit."""
    latin1 = os.fsencode(tmp_path) + b"/caf\xe9"
    os.mkdir(latin1)
    # Five missing directories (a short config line, a long output), all failing statvfs.
    missing = [f"/nx{i}" + "€" * 6 for i in range(5)]
    cut = disk_summary(missing)
    assert len(cut) == 255 and cut.decode("utf-8", "replace").endswith("\ufffd")  # mid-"€"
    h = healthd(disk_conf(", ".join(missing)).replace("[check.disk]", "[check.long]")
                + disk_conf("@LATIN1@", "space_fail = 100%").replace("[check.disk]",
                                                                      "[check.latin]"),
                start=False)
    with open(h.config_path, "rb") as f:
        conf = f.read()
    with open(h.config_path, "wb") as f:
        f.write(conf.replace(b"@LATIN1@", latin1))
    h.start()
    h.check("/healthcheck", "latin:free", status="fail")
    h.check("/healthcheck", "long:free", status="fail")
    body = raw_json(h, "/healthcheck")
    latin = body["checks"]["latin:free"][0]
    assert latin["output"].startswith(f"{tmp_path}/caf\ufffd: "), latin
    long = body["checks"]["long:free"][0]
    assert long["output"] == cut.decode("utf-8", "ignore"), long
    assert body["output"] == "long:free fail: " + long["output"], body
