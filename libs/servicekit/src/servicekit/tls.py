"""TLS between services: server and channel credentials from mounted PEM files.

A server given a certificate and key serves TLS only (no plaintext port); given a client CA
as well, it requires a client certificate signed by that CA (mutual TLS). The files are
read again when they change (cert-manager renews the Secret in place), at the next
handshake, so a renewed certificate needs no restart. A client given a CA verifies the
server against it (host name included); given a certificate and key too, it presents them.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import grpc

log = logging.getLogger("servicekit.tls")


class TlsConfigError(ValueError):
    """The TLS settings name files that do not go together or cannot be read."""


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"cannot read the {what} file {path}: {exc.strerror}") from exc


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


@dataclass
class _ServerFiles:
    cert_file: str
    key_file: str
    client_ca_file: str
    _seen: tuple[float, ...] = field(default=(), init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def _stamp(self) -> tuple[float, ...]:
        files = (self.cert_file, self.key_file, self.client_ca_file)
        return tuple(_mtime(f) for f in files if f)

    def configuration(self) -> grpc.ServerCertificateConfiguration:
        key = _read(self.key_file, "TLS key")
        cert = _read(self.cert_file, "TLS certificate")
        client_ca = _read(self.client_ca_file, "client CA") if self.client_ca_file else None
        return grpc.ssl_server_certificate_configuration([(key, cert)], client_ca)

    def initial(self) -> grpc.ServerCertificateConfiguration:
        with self._lock:
            self._seen = self._stamp()
            return self.configuration()

    def changed(self) -> grpc.ServerCertificateConfiguration | None:
        """A new configuration when a file changed since the last one, else None (keep)."""
        with self._lock:
            stamp = self._stamp()
            if stamp == self._seen:
                return None
            try:
                config = self.configuration()
            except TlsConfigError:
                log.warning("tls_reload_failed")  # a half-written Secret: keep the old one
                return None
            self._seen = stamp
            log.info("tls_certificate_reloaded")
            return config


def server_credentials(
    cert_file: str, key_file: str, client_ca_file: str = ""
) -> grpc.ServerCredentials:
    """Credentials of a TLS server (mutual TLS when ``client_ca_file`` is given)."""
    if not (cert_file and key_file):
        raise TlsConfigError("a TLS server needs both a certificate file and a key file")
    files = _ServerFiles(cert_file, key_file, client_ca_file)
    return grpc.dynamic_ssl_server_credentials(
        files.initial(),
        files.changed,  # type: ignore[arg-type]  # None keeps the current one
        require_client_authentication=bool(client_ca_file),
    )


def channel_credentials(
    ca_file: str, cert_file: str = "", key_file: str = ""
) -> grpc.ChannelCredentials:
    """Credentials of a client that verifies servers against ``ca_file`` (and presents
    ``cert_file``/``key_file`` when both are given, for mutual TLS)."""
    if not ca_file:
        raise TlsConfigError("a TLS client needs the CA file to verify servers with")
    if bool(cert_file) != bool(key_file):
        raise TlsConfigError("a client certificate needs both its certificate and key files")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca_file, "CA"),
        private_key=_read(key_file, "TLS key") if key_file else None,
        certificate_chain=_read(cert_file, "TLS certificate") if cert_file else None,
    )
