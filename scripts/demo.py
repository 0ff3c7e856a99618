"""Runs magento-healthd against throwaway local services, in the foreground, until Ctrl-C.

Started by scripts/demo. The services (php-fpm, Redis, ...) are the test suite's own starters from
tests/svc_*.py; everything lives in a temporary directory that is removed on exit.
"""
import os
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from svc_fpm import Fpm  # noqa: E402
from svc_mariadb import MariaDB  # noqa: E402
from svc_redis import RedisServer  # noqa: E402

BINARY = os.path.join(HERE, "..", "build", "magento-healthd")


def start_services(work, services):
    """Starts each service, records it in `services` for cleanup, returns [check.*] sections."""
    print("starting a throwaway MariaDB ...", flush=True)
    db = MariaDB(work, "mariadb")
    services.append(db)
    db.start()
    pw_file = os.path.join(work, "mysql.pw")
    with open(pw_file, "w") as f:
        f.write("demo-only-password\n")
    db.add_healthd_user("demo-only-password")
    print("starting a throwaway php-fpm pool ...", flush=True)
    fpm = Fpm(max_children=2, parent=work)
    services.append(fpm)
    fpm.start()
    print("starting a throwaway Redis ...", flush=True)
    redis = RedisServer(os.path.join(work, "redis"))
    services.append(redis)
    redis.start()
    return [f"""
[check.db]
type = mysql
writer_region = demo-region
interval = 1s
{db.healthd_keys(pw_file)}
[check.fpm]
type = fpm
socket = {fpm.socket}
status_socket = {fpm.status_socket}
interval = 2s

[check.redis_session]
type = redis
role = session
interval = 1s
{redis.healthd_keys()}"""], (
        f'  mariadb -S {db.socket} -e "SET GLOBAL read_only=ON"   # database read-only: region fails\n'
        f"  redis-cli -s {redis.socket} replicaof 127.0.0.1 1      # session store read-only\n"
        f"  redis-cli -s {redis.socket} replicaof no one           # writable again\n")


def main():
    work = tempfile.mkdtemp(prefix="magento-healthd-demo.")
    port = int(os.environ.get("PORT", "8642"))
    services = []
    proc = None
    try:
        checks, hints = start_services(work, services)
        checks.append(f"""
[check.drain]
type = drain
interval = 1s
file = {work}/drain

[check.disk]
type = disk
interval = 5s
path = {work}
""")
        conf = os.path.join(work, "magento-healthd.conf")
        with open(conf, "w") as f:
            f.write(f"[server]\nlisten = 127.0.0.1:{port}\nregion = demo-region\n"
                    f"shutdown_delay = 0s\n" + "".join(checks))
        print(f"""
magento-healthd demo; config: {conf}
  curl -s http://127.0.0.1:{port}/healthcheck | python3 -m json.tool
  curl -s http://127.0.0.1:{port}/healthcheck/region
  curl -s http://127.0.0.1:{port}/metrics
  touch {work}/drain      # drain the node; rm it to undrain
{hints}Ctrl-C to stop.
""", flush=True)
        proc = subprocess.Popen([BINARY, "-c", conf])
        proc.wait()
    except KeyboardInterrupt:
        if proc:
            proc.send_signal(signal.SIGTERM)
            proc.wait()
    finally:
        for s in reversed(services):
            s.stop()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
