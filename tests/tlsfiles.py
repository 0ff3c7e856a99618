"""Throwaway TLS material for the tests, made with the openssl tool: a CA, a server certificate
and one for another name signed by it, and an unrelated CA to fail verification with.

    d = make_tls_files(tmp_path, server_san="DNS:localhost,IP:127.0.0.1")
    d / "ca.pem", d / "server.pem", d / "server.key", d / "other.pem", d / "other.key",
    d / "wrong-ca.pem"
"""
import os
import subprocess

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def make_tls_files(d, server_san, other_san="DNS:other.mh.test"):
    def ssl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=30)
    ssl("req", "-x509", *_EC, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=magento-healthd test CA")
    for name, san in (("server", server_san), ("other", other_san)):
        ssl("req", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        (d / f"{name}.ext").write_text(f"subjectAltName = {san}\n")
        ssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    ssl("req", "-x509", *_EC, "-keyout", "wrong-ca.key", "-out", "wrong-ca.pem", "-days", "2",
        "-subj", "/CN=some other CA")
    # Servers run as root here, but keep the keys readable only by their owner, as in production.
    for name in ("server", "other"):
        os.chmod(d / f"{name}.key", 0o600)
    return d
