"""The email of a :class:`~leadrouter_sdk.notify.Notice`: multipart/alternative, plain text and
HTML (pure: no I/O; the clock is the event's)."""

from __future__ import annotations

import datetime as dt
import email.utils
import html
import zoneinfo
from email.message import EmailMessage
from typing import Final

from leadrouter_sdk.notify import Notice

__all__ = ["build", "local_due"]

_LABELS: Final = {"accept": "Accept", "contacted": "Mark contacted", "reject": "Reject"}
_COLORS: Final = {"accept": "#1a7f37", "contacted": "#0969da", "reject": "#cf222e"}


def local_due(note: Notice, fallback_zone: str = "UTC",
              when: dt.datetime | None = None) -> str | None:
    """The due time (or ``when``) in the rep's own time zone, e.g. ``Wed 1 May 2024, 06:00 PDT
    (America/Los_Angeles)``."""
    at = when or note.due
    if at is None:
        return None
    name = note.timezone or fallback_zone
    try:
        zone: dt.tzinfo = zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        name, zone = "UTC", dt.UTC
    local = at.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} {local.tzname()} ({name})"


def _expiry(note: Notice, fallback_zone: str) -> str | None:
    if not note.links or note.expires_at is None:
        return None
    return f"These links work once, until {local_due(note, fallback_zone, note.expires_at)}."


def _plain(note: Notice, due: str | None, expiry: str | None) -> str:
    lines = [f"{note.headline}: {note.name}", f"Lead {note.lead_id}"]
    if note.score:
        lines.append(f"Score {note.score}")
    if note.pool:
        lines.append(f"Pool {note.pool}")
    lines += [f"{label}: {value}" for label, value in note.summary]
    if due:
        lines.append(f"Due: {due}")
    if note.minutes_left is not None:
        lines.append(f"{note.minutes_left} minutes left")
    if note.why:
        lines += ["", "Why you:"] + [f"  - {line}" for line in note.why]
    if note.links:
        lines += [""] + [f"{_LABELS[a]}: {url}" for a, url in note.links.items()]
    if expiry:
        lines.append(expiry)
    return "\n".join(lines) + "\n"


def _html(note: Notice, due: str | None, expiry: str | None) -> str:
    e = html.escape
    rows = "".join(f"<tr><th align=\"left\">{e(label)}</th><td>{e(value)}</td></tr>"
                   for label, value in note.summary)
    if note.score:
        rows += f"<tr><th align=\"left\">Score</th><td>{e(note.score)}</td></tr>"
    if due:
        rows += f"<tr><th align=\"left\">Due</th><td><strong>{e(due)}</strong></td></tr>"
    why = "".join(f"<li>{e(line)}</li>" for line in note.why)
    buttons = " ".join(
        f"<a href=\"{e(url)}\" style=\"display:inline-block;padding:8px 14px;margin:4px;"
        f"border-radius:6px;color:#fff;text-decoration:none;background:{_COLORS[a]}\">"
        f"{e(_LABELS[a])}</a>" for a, url in note.links.items())
    return (
        "<!doctype html><html><body style=\"font-family:sans-serif;max-width:600px\">"
        f"<h2>{e(note.headline)}</h2><p><strong>{e(note.name)}</strong> "
        f"&middot; lead <code>{e(note.lead_id)}</code>"
        + (f" &middot; pool {e(note.pool)}" if note.pool else "") + "</p>"
        + (f"<table cellpadding=\"4\">{rows}</table>" if rows else "")
        + (f"<h3>Why you</h3><ul>{why}</ul>" if why else "")
        + (f"<p>{buttons}</p>" if buttons else "")
        + (f"<p style=\"color:#666;font-size:12px\">{e(expiry)}</p>" if expiry else "")
        + "<p style=\"color:#666;font-size:12px\">Sent by leadrouter.</p></body></html>")


def build(note: Notice, *, sender: str, to: str, domain: str,
          fallback_zone: str = "UTC") -> EmailMessage:
    """The message to ``to`` about ``note``."""
    due = local_due(note, fallback_zone)
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    subject = f"{note.headline}: {note.name}"
    if due and note.kind != "lead.breached":
        subject += f" (due {due.split(' (')[0]})"
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(localtime=False)
    # the same event → the same Message-ID: a redelivery is recognisably a duplicate
    msg["Message-ID"] = f"<{note.event_id}.{note.lead_id}@{domain}>"
    msg["X-Leadrouter-Lead"] = note.lead_id
    msg["X-Leadrouter-Event"] = note.kind
    expiry = _expiry(note, fallback_zone)
    msg.set_content(_plain(note, due, expiry))
    msg.add_alternative(_html(note, due, expiry), subtype="html")
    return msg
