"""Runs magento-healthd against throwaway local services, in the foreground, until Ctrl-C.

Started by scripts/demo. The services (MariaDB, Redis) are the test suite's own starters from
tests/svc_*.py; everything lives in a temporary directory that is removed on exit. The config is a
[server] section naming the Magento root, and a [magento] section with magento-healthd's own
least-privilege database user: every check is derived from the demo Magento root's
app/etc/env.php, shown with --print-config before the daemon starts.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from svc_mariadb import MariaDB  # noqa: E402
from svc_redis import RedisServer  # noqa: E402

BINARY = os.path.join(HERE, "..", "build", "magento-healthd")


ENV_PHP = """<?php
return [
    'backend' => ['frontName' => 'admin'],
    'MAGE_MODE' => 'production',
    'db' => [
        'table_prefix' => '',
        'connection' => [
            'default' => [
                'host' => '127.0.0.1:{db_port}',
                'dbname' => 'magento',
                'username' => 'magento',
                'password' => 'demo-magento-password',
                'model' => 'mysql4',
                'engine' => 'innodb',
                'initStatements' => 'SET NAMES utf8;',
                'active' => '1',
            ],
        ],
    ],
    'session' => [
        'save' => 'redis',
        'redis' => [
            'host' => '127.0.0.1',
            'port' => '{redis_port}',
            'password' => '',
            'timeout' => '2.5',
            'database' => '2',
        ],
    ],
    'cache' => [
        'frontend' => [
            'default' => [
                'id_prefix' => 'demo_',
                'backend' => 'Magento\\Framework\\Cache\\Backend\\Redis',
                'backend_options' => [
                    'server' => '{redis_socket}',
                    'database' => '0',
                    'port' => '0',
                ],
            ],
            'page_cache' => [
                'id_prefix' => 'demo_',
                'backend' => 'Magento\\Framework\\Cache\\Backend\\Redis',
                'backend_options' => [
                    'server' => '127.0.0.1',
                    'port' => '{redis_port}',
                    'database' => '1',
                ],
            ],
        ],
    ],
];
"""


def write_env_php(root, text):
    """Writes app/etc/env.php as a Magento install leaves it: mode 0640, group www-data (the unit's
    SupplementaryGroups=www-data lets the service read it). Replaced atomically, like a deploy."""
    etc = os.path.join(root, "app", "etc")
    os.makedirs(etc, exist_ok=True)
    path = os.path.join(etc, "env.php")
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.chmod(path + ".tmp", 0o640)
    try:
        shutil.chown(path + ".tmp", group="www-data")
    except (LookupError, PermissionError):
        pass
    os.replace(path + ".tmp", path)
    return path


def start_services(work, services):
    """Starts each service, records it in `services` for cleanup, writes a Magento root whose
    env.php points at them, and returns the config text: a [server] section (and [magento], which
    names magento-healthd's own least-privilege database user) - every check comes from env.php."""
    print("starting a throwaway MariaDB ...", flush=True)
    db = MariaDB(work, "mariadb")
    services.append(db)
    db.start()
    pw_file = os.path.join(work, "mysql.pw")
    with open(pw_file, "w") as f:
        f.write("demo-only-password\n")
    db.add_healthd_user("demo-only-password")
    print("starting a throwaway Redis ...", flush=True)
    redis = RedisServer(os.path.join(work, "redis"))
    services.append(redis)
    redis.start()
    root = os.path.join(work, "magento")
    env_php = write_env_php(root, ENV_PHP.format(db_port=db.port, redis_port=redis.port,
                                                 redis_socket=redis.socket))
    config = (f"magento_root = {root}\n\n"
              f"[magento]\ndb_user = healthd\ndb_password_file = {pw_file}\n")
    hints = (f'  mariadb -S {db.socket} -e "SET GLOBAL read_only=ON"   # database read-only: region fails\n'
             f"  redis-cli -s {redis.socket} replicaof 127.0.0.1 1      # session store read-only\n"
             f"  redis-cli -s {redis.socket} replicaof no one           # writable again\n"
             f"  $EDITOR {env_php}   # the daemon follows a rewritten env.php within a second\n")
    return config, hints


def main():
    work = tempfile.mkdtemp(prefix="magento-healthd-demo.")
    port = int(os.environ.get("PORT", "8642"))
    services = []
    proc = None
    try:
        config, hints = start_services(work, services)
        conf = os.path.join(work, "magento-healthd.conf")
        with open(conf, "w") as f:
            f.write(f"[server]\nlisten = 127.0.0.1:{port}\nregion = demo-region\n"
                    f"shutdown_delay = 0s\n" + config)
        subprocess.run([BINARY, "-c", conf, "--print-config"])
        print(f"""
magento-healthd demo; config: {conf}
  curl -s http://127.0.0.1:{port}/healthcheck | python3 -m json.tool
  curl -s http://127.0.0.1:{port}/healthcheck/region
  curl -s http://127.0.0.1:{port}/metrics
  build/magento-healthd status -c {conf}   # the on-call table
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
