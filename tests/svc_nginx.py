"""A throwaway nginx (Debian's nginx-light) on a free loopback port, with its own prefix.

Used by the nginx integration test and by bench/.
"""
import os
import signal
import subprocess

from harness import free_port, terminate, wait_until
import socket


class Nginx:
    def __init__(self, workdir, server_body, http_extra=""):
        self.dir = os.path.join(workdir, "nginx")
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        self.port = free_port()
        self.conf = os.path.join(self.dir, "nginx.conf")
        self.access_log = os.path.join(self.dir, "logs", "access.log")
        with open(self.conf, "w") as f:
            f.write(f"""
worker_processes 2;
pid {self.dir}/nginx.pid;
error_log {self.dir}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {self.access_log};
    client_body_temp_path {self.dir}/client_body;
    proxy_temp_path {self.dir}/proxy;
    fastcgi_temp_path {self.dir}/fastcgi;
    uwsgi_temp_path {self.dir}/uwsgi;
    scgi_temp_path {self.dir}/scgi;
    {http_extra}
    server {{
        listen 127.0.0.1:{self.port};
        {server_body}
    }}
}}
""")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["nginx", "-p", self.dir, "-c", self.conf, "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("nginx exited: " + self.proc.stderr.read().decode())
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        wait_until(up, 10, "nginx to listen")
        return self

    def stop(self):
        terminate(self.proc, signal.SIGQUIT)
