"""leadrouter plugin: email the rep when a lead is assigned, reassigned, rerouted to them, near
its SLA deadline (``sla.warning``) or breached.

On each such event (``on_event``, from the durable outbox, at least once) it sends one
``multipart/alternative`` message (plain text + HTML) over SMTP: the lead's summary, why it was
routed to the rep (the decision's explanation), the due time in the rep's own time zone (the
event's ``owner_timezone``, from rules/reps.yaml) and the signed accept / contacted / reject
links when they are configured. SMTP with STARTTLS (``LEADROUTER_EMAIL_SECURITY=starttls``,
port 587, the default), implicit TLS (``tls``, port 465) or none (``none``, a local relay),
with ``AUTH`` when a username is set. smtplib runs in a thread: the event loop never blocks.
One connection is kept open and reused for the next message (reopened when the server closed
it meanwhile), and closed with QUIT when the service stops (the ``shutdown`` hook).

Addresses are plugin settings (``LEADROUTER_EMAIL_REPS``: ``alice=alice@acme.example``; pools:
``LEADROUTER_EMAIL_POOLS``), not rules: rules/reps.yaml holds no contact details.

Failures: a refused login (535), a 5xx for the sender or recipient, or a server without
STARTTLS/AUTH are permanent (dead-lettered at once, the log says which setting to fix);
connection refused or reset, timeouts, TLS handshake errors and 4xx answers are retried through
the outbox's backoff. Logs name the lead id and the rep, never an address or the lead's data.
See docs/notifications.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import smtplib
import ssl
import threading
from collections.abc import Iterable, Mapping
from email.message import EmailMessage
from typing import Final

from leadrouter_sdk import Event, PluginDisabled, hookimpl
from leadrouter_sdk.notify import DEFAULT_EVENTS, Notice, notice
from leadrouter_sdk.writeback import PermanentError, RetryableError, parse_map

from leadrouter_email._message import build, local_due

__all__ = ["EmailPlugin", "PermanentError", "RetryableError", "build", "local_due"]
__version__ = "0.1.0"

log = logging.getLogger("leadrouter.plugins.email")

_SECURITY: Final = {"starttls": 587, "tls": 465, "none": 25}


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


class EmailPlugin:
    """The plugin. Arguments default to the ``LEADROUTER_EMAIL_*`` environment variables."""

    name = "email"
    # No ``sink_concurrency``: one at a time. Overlapping calls would be safe (``_lock``
    # serialises the one kept-open SMTP connection) but gain nothing: they would queue on the
    # lock, each wait counted against the event budget. Sending in parallel needs a pool of
    # connections.

    def __init__(self, host: str | None = None, *, port: int | None = None,
                 security: str | None = None, username: str | None = None,
                 password: str | None = None, sender: str | None = None,
                 reps: Mapping[str, str] | None = None, pools: Mapping[str, str] | None = None,
                 events: Iterable[str] | None = None, ca_file: str | None = None,
                 timeout: float | None = None, timezone: str | None = None) -> None:
        env = os.environ
        self.host = host or env.get("LEADROUTER_EMAIL_SMTP_HOST", "")
        self.sender = sender or env.get("LEADROUTER_EMAIL_FROM", "")
        if not (self.host and self.sender):
            raise PluginDisabled("not configured: set LEADROUTER_EMAIL_SMTP_HOST and "
                                 "LEADROUTER_EMAIL_FROM")
        self.security = (security or env.get("LEADROUTER_EMAIL_SECURITY") or "starttls").lower()
        if self.security not in _SECURITY:
            raise ValueError("LEADROUTER_EMAIL_SECURITY must be starttls, tls or none")
        self.port = port or int(env.get("LEADROUTER_EMAIL_SMTP_PORT") or _SECURITY[self.security])
        self.username = username if username is not None else env.get(
            "LEADROUTER_EMAIL_USERNAME", "")
        self.password = password if password is not None else env.get(
            "LEADROUTER_EMAIL_PASSWORD", "")
        self.reps = dict(reps if reps is not None else parse_map(env.get("LEADROUTER_EMAIL_REPS")))
        self.pools = dict(pools if pools is not None else parse_map(
            env.get("LEADROUTER_EMAIL_POOLS")))
        if not (self.reps or self.pools):
            raise PluginDisabled("no addresses: set LEADROUTER_EMAIL_REPS=rep=address,... "
                                 "(and/or LEADROUTER_EMAIL_POOLS=pool=address,...)")
        self.events = frozenset(events if events is not None else (
            _split(env.get("LEADROUTER_EMAIL_EVENTS")) or DEFAULT_EVENTS))
        self.ca_file = ca_file if ca_file is not None else env.get("LEADROUTER_EMAIL_CA_FILE")
        self.timeout = timeout if timeout is not None else float(
            env.get("LEADROUTER_EMAIL_TIMEOUT") or 5.0)
        self.timezone = timezone or env.get("LEADROUTER_EMAIL_TIMEZONE") or "UTC"
        self.domain = self.sender.rpartition("@")[2].strip("> ") or "leadrouter.invalid"
        self._smtp: smtplib.SMTP | None = None  # kept open between messages
        self._lock = threading.Lock()  # one conversation at a time (a timed-out send may run on)

    def recipient(self, note: Notice) -> str:
        if note.rep and note.rep in self.reps:
            return self.reps[note.rep]
        if note.pool and note.pool in self.pools:
            return self.pools[note.pool]
        raise PermanentError(
            f"rep {note.rep!r} has no email address: add `{note.rep or '<rep>'}=<address>` to "
            "LEADROUTER_EMAIL_REPS" + (f" (or `{note.pool}=<address>` to LEADROUTER_EMAIL_POOLS)"
                                       if note.pool else ""))

    def message(self, note: Notice) -> EmailMessage:
        return build(note, sender=self.sender, to=self.recipient(note), domain=self.domain,
                     fallback_zone=self.timezone)

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file or None)

    def _connect(self) -> smtplib.SMTP:
        smtp: smtplib.SMTP
        if self.security == "tls":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                    context=self._context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.security == "starttls":
                smtp.starttls(context=self._context())
            if self.username:
                smtp.login(self.username, self.password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                smtp.quit()
            smtp.close()

    def _send_sync(self, msg: EmailMessage) -> None:
        """Send on the open connection (one SMTP conversation per message is the slow part of
        a burst), or a new one; a connection the server closed meanwhile is reopened once."""
        with self._lock:
            if self._smtp is not None:
                try:
                    self._smtp.send_message(msg)
                    return
                except (smtplib.SMTPServerDisconnected, OSError):
                    self._drop()  # closed while idle: reconnect below
            self._smtp = self._connect()
            try:
                self._smtp.send_message(msg)
            except (smtplib.SMTPServerDisconnected, OSError):
                self._drop()
                raise

    async def send(self, msg: EmailMessage) -> None:
        """Send ``msg``; RetryableError or PermanentError (naming the setting to fix)."""
        what = f"SMTP {self.host}:{self.port}"
        try:
            await asyncio.to_thread(self._send_sync, msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentError(f"{what} refused the login ({exc.smtp_code}): check "
                                 "LEADROUTER_EMAIL_USERNAME / LEADROUTER_EMAIL_PASSWORD") from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentError(f"{what} does not support {exc}: check LEADROUTER_EMAIL_SECURITY"
                                 " (starttls, tls or none) and LEADROUTER_EMAIL_USERNAME") from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(code >= 500 for code in codes):
                raise PermanentError(f"{what} refused the rep's address ({codes[0]}): fix it in "
                                     "LEADROUTER_EMAIL_REPS") from exc
            raise RetryableError(f"{what}: recipient deferred ({codes}) (retried)") from exc
        except smtplib.SMTPSenderRefused as exc:
            if exc.smtp_code >= 500:
                raise PermanentError(f"{what} refused the sender ({exc.smtp_code}): check "
                                     "LEADROUTER_EMAIL_FROM") from exc
            raise RetryableError(f"{what}: sender deferred ({exc.smtp_code})") from exc
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code >= 500:
                raise PermanentError(f"{what} refused the message ({exc.smtp_code})") from exc
            raise RetryableError(f"{what}: {exc.smtp_code} (retried)") from exc
        except (OSError, smtplib.SMTPException) as exc:  # refused, reset, timeout, TLS
            raise RetryableError(f"{what}: {type(exc).__name__}: {exc} (retried)") from exc

    def preview(self, event: Event) -> str:
        """The message ``event`` would be sent as, MIME text (``test-notify --show``)."""
        return self.message(notice(event)).as_string()

    def close(self) -> None:
        """QUIT and close the kept connection, if any (waits for a send in progress)."""
        with self._lock:
            self._drop()

    @hookimpl
    async def shutdown(self) -> None:
        """The service stops: say QUIT to the SMTP server and close the connection."""
        await asyncio.to_thread(self.close)

    @hookimpl
    async def on_event(self, event: Event) -> None:
        if event.type not in self.events:
            return
        note = notice(event)
        if note.rep is None and note.pool is None:
            return  # a queued lead: nobody to tell
        try:
            await self.send(self.message(note))
        except PermanentError as exc:
            log.error("email %s for lead %s (rep %s) rejected, it will be dead-lettered: %s",
                      event.type, event.lead_id, note.rep, exc)
            raise
        except RetryableError as exc:
            log.warning("email %s for lead %s (rep %s) will be retried: %s", event.type,
                        event.lead_id, note.rep, exc)
            raise
        log.info("email %s for lead %s sent to rep %s", event.type, event.lead_id, note.rep)
