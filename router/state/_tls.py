"""TLS for ``rediss://`` connections: the CA that signs the server's certificate, an optional
client certificate (servers with ``tls-auth-clients yes``) and the name to verify.

Built once per :class:`~router.state.wire.Wire` with :mod:`ssl` (the transport is asyncio's own
TLS, so the hot path keeps the same protocol object). A file that cannot be read or a key that
does not match its certificate is a :class:`ValueError` naming the setting to fix.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from router.settings import Settings

__all__ = ["TlsOptions", "make_context", "tls_options"]


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """``LEADROUTER_REDIS_TLS_*``: CA bundle (default: the system's), client certificate and
    key (both or neither), and the server name to verify (default: the host in the URL)."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None


def make_context(options: TlsOptions) -> ssl.SSLContext:
    """A client context that verifies the server; raises ``ValueError`` with the fix."""
    try:
        context = ssl.create_default_context(cafile=options.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot read the Redis CA file {options.ca_file!r} ({exc}) — fix "
                         "LEADROUTER_REDIS_TLS_CA_FILE") from None
    if options.cert_file or options.key_file:
        if not options.cert_file:
            raise ValueError("LEADROUTER_REDIS_TLS_KEY_FILE is set without "
                             "LEADROUTER_REDIS_TLS_CERT_FILE — set both or neither")
        try:
            context.load_cert_chain(options.cert_file, options.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"cannot load the Redis client certificate {options.cert_file!r} "
                             f"/ key {options.key_file!r} ({exc}) — fix "
                             "LEADROUTER_REDIS_TLS_CERT_FILE / _KEY_FILE") from None
    return context


def tls_options(settings: Settings) -> TlsOptions:
    """The ``LEADROUTER_REDIS_TLS_*`` settings."""
    return TlsOptions(ca_file=settings.redis_tls_ca_file, cert_file=settings.redis_tls_cert_file,
                      key_file=settings.redis_tls_key_file,
                      server_name=settings.redis_tls_server_name)
