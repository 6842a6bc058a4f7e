"""A self-signed certificate for the stubs: the `pagerduty` client refuses any base URL but https://.

One certificate per process, for 127.0.0.1 and localhost. A client trusts it through
`SSL_CERT_FILE` (httpx2 reads it when a client is built; urllib through OpenSSL's default paths),
so a test sets that variable in-process (monkeypatch) or in a child process's environment.
"""

from __future__ import annotations

import atexit
import ipaddress
import shutil
import ssl
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the certificate (also the CA file a client trusts) and its key."""

    cert_file: str
    key_file: str

    def server_context(self) -> ssl.SSLContext:
        """A server-side context serving the certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


_lock = threading.Lock()
_files: TlsFiles | None = None


def certificate() -> TlsFiles:
    """This process's stub certificate, made on first use."""
    global _files
    with _lock:
        if _files is None:
            _files = _make(Path(tempfile.mkdtemp(prefix="dr-stub-tls-")))
        return _files


def _make(directory: Path) -> TlsFiles:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    atexit.register(shutil.rmtree, directory, True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dr-responder test stub")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "stub-cert.pem", directory / "stub-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return TlsFiles(str(cert_file), str(key_file))
