"""A real SMTP server on loopback for the email plugin's tests (aiosmtpd): plain, STARTTLS or
implicit TLS with a self-signed certificate generated here (``cryptography``), optional AUTH
(PLAIN/LOGIN, one user), every accepted message kept as a parsed :class:`EmailMessage`."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import ssl
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from _service import free_port
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed(directory: Path) -> tuple[Path, Path]:
    """(certificate, key) PEM files for ``localhost`` / ``127.0.0.1``, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Smtp:
    """``with Smtp(...) as smtp:`` a server on 127.0.0.1:``smtp.port``; ``smtp.messages``."""

    def __init__(self, *, security: str = "none", cert: tuple[Path, Path] | None = None,
                 user: tuple[str, str] | None = None) -> None:
        self.security, self.user = security, user
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.received: list[float] = []
        self.logins: list[tuple[str, bool]] = []
        self.quits = 0  # QUIT commands received
        self.lock = threading.Lock()
        kwargs: dict[str, Any] = {}
        context = None
        if cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(cert[0]), str(cert[1]))
        if security == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        elif security == "tls":
            kwargs.update(ssl_context=context, server_hostname="localhost")
        if user is not None:
            kwargs.update(authenticator=self._auth, auth_required=True,
                          auth_require_tls=security != "none")
        self.kwargs = kwargs
        self.controller: Controller | None = None

    def _auth(self, server: Any, session: Any, envelope: Any, mechanism: str,
              data: Any) -> AuthResult:
        ok = (isinstance(data, LoginPassword) and self.user is not None
              and (data.login.decode(), data.password.decode()) == self.user)
        self.logins.append((mechanism, ok))
        return AuthResult(success=ok, handled=False)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)  # type: ignore[arg-type]
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.received.append(time.monotonic())
        return "250 Message accepted for delivery"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.quits += 1
        return "221 Bye"

    def wait_for(self, n: int, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if len(self.messages) >= n:
                    return list(self.messages)
            if time.monotonic() > deadline:
                raise AssertionError(f"{n} messages not received within {timeout}s "
                                     f"({len(self.messages)} were)")
            time.sleep(0.01)

    def start(self) -> Smtp:
        # a new controller each time: a stopped one cannot start again (its loop is closed)
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **self.kwargs)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def __enter__(self) -> Smtp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
