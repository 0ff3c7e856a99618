"""A network namespace whose DNS resolver swallows every query, for tests of bounded lookups.

The namespace is made by `unshare -mn` (own network and mount namespaces): loopback is up,
/etc/resolv.conf points at 127.0.0.1, where a UDP and a TCP socket are bound but never read or
accepted, so every lookup of a name that is not in the namespace's /etc/hosts hangs for as long
as the resolver library is willing to wait. Processes join it with the `prefix` command
(nsenter); the test process reaches them by opening its sockets inside the namespace
(`inside()`), since a socket stays in the namespace it was made in.

    ns = SwallowingResolverNetns(tmp_path, hosts={"db.mh.test": "127.0.0.1"})
    h.prefix = ns.prefix
    with ns.inside():
        http_get(...)
    ns.stop()
"""
import contextlib
import ctypes
import os
import subprocess
import textwrap

from harness import terminate

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

# Runs as the namespace's first process: binds port 53 and then never reads a query.
_SWALLOWER = textwrap.dedent("""
    import signal, socket, sys
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 53))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 53))
    tcp.listen(64)
    print("swallowing", flush=True)
    signal.pause()
""")


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class SwallowingResolverNetns:
    def __init__(self, workdir, hosts=None):
        os.makedirs(workdir, exist_ok=True)
        resolv = os.path.join(workdir, "resolv.conf")
        with open(resolv, "w") as f:
            f.write("nameserver 127.0.0.1\noptions timeout:5 attempts:2\n")
        hosts_file = os.path.join(workdir, "hosts")
        with open(hosts_file, "w") as f:
            f.write("127.0.0.1 localhost\n::1 localhost ip6-localhost\n")
            for name, addr in (hosts or {}).items():
                f.write(f"{addr} {name}\n")
        script = (f"ip link set lo up && mount --bind {resolv} /etc/resolv.conf && "
                  f"mount --bind {hosts_file} /etc/hosts && "
                  f"exec /usr/bin/python3 -c '{_SWALLOWER}'")
        self.proc = subprocess.Popen(["unshare", "-mn", "--propagation", "private", "sh", "-c",
                                      script], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "swallowing":
            terminate(self.proc)
            raise AssertionError(f"could not make the network namespace: {line!r}")
        self.pid = self.proc.pid
        self.prefix = ["nsenter", "-t", str(self.pid), "-m", "-n", "--"]

    @contextlib.contextmanager
    def inside(self):
        """Sockets made in this block belong to the namespace (this thread only)."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/proc/{self.pid}/ns/net", os.O_RDONLY)
        try:
            _setns(target)
            yield
        finally:
            _setns(own)
            os.close(own)
            os.close(target)

    def host(self, h):
        """Makes the not yet started Healthd `h` run inside the namespace and answers its HTTP
        requests from there. Returns h."""
        h.prefix = self.prefix
        plain_get = h.get

        def get(path, **kw):
            with self.inside():
                return plain_get(path, **kw)
        h.get = get
        return h

    def run(self, argv, **kw):
        """Runs a command inside the namespace (e.g. getent, to show that lookups hang)."""
        return subprocess.run(self.prefix + argv, **kw)

    def stop(self):
        terminate(self.proc)
        self.proc.stdout.close()
