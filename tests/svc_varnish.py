"""A throwaway Varnish (Debian's varnish) on a free loopback port, in front of one backend.

varnishd runs in the foreground with its own working directory, the built-in VCL (`-b`) and a
small malloc store; no jail (`-j none`), so it needs no varnish user and can use the test's
temporary directory. Used by the nginx integration test (Varnish in front of nginx).
"""
import os
import socket
import subprocess

from harness import free_port, terminate, wait_until


class Varnish:
    def __init__(self, workdir, backend_port, name="varnish"):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.backend_port = backend_port
        self.log = os.path.join(self.dir, "varnishd.log")
        self.proc = None

    def start(self):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            ["varnishd", "-F", "-j", "none", "-n", os.path.join(self.dir, "work"), "-T", "none",
             "-a", f"127.0.0.1:{self.port}", "-b", f"127.0.0.1:{self.backend_port}",
             "-s", "malloc,16m"],
            stdout=self.logf, stderr=subprocess.STDOUT)

        def up():
            if self.proc.poll() is not None:
                with open(self.log, errors="replace") as f:
                    raise AssertionError("varnishd exited: " + f.read())
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        wait_until(up, 30, "varnishd to listen")
        return self

    def stop(self):
        terminate(self.proc)
        self.logf.close()
