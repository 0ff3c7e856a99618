"""Runs magento-healthd against throwaway local services, in the foreground, until Ctrl-C.

Started by scripts/demo. Everything lives in a temporary directory that is removed on exit.
"""
import os
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from harness import free_port  # noqa: E402

BINARY = os.path.join(HERE, "..", "build", "magento-healthd")


def main():
    work = tempfile.mkdtemp(prefix="magento-healthd-demo.")
    port = int(os.environ.get("PORT", "8642"))
    services = []
    checks = [f"""
[check.drain]
type = drain
interval = 1s
file = {work}/drain

[check.disk]
type = disk
interval = 5s
path = {work}
"""]
    conf = os.path.join(work, "magento-healthd.conf")
    with open(conf, "w") as f:
        f.write(f"[server]\nlisten = 127.0.0.1:{port}\nregion = demo-region\n"
                f"shutdown_delay = 0s\n" + "".join(checks))
    print(f"""
magento-healthd demo; config: {conf}
  curl -s http://127.0.0.1:{port}/healthcheck | python3 -m json.tool
  curl -s http://127.0.0.1:{port}/healthcheck/region
  curl -s http://127.0.0.1:{port}/healthcheck/live
  touch {work}/drain      # drain the node; rm it to undrain
Ctrl-C to stop.
""", flush=True)
    proc = subprocess.Popen([BINARY, "-c", conf])
    try:
        proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
    finally:
        for s in reversed(services):
            s.stop()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
