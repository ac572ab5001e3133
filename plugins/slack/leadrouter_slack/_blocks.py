"""The Block Kit message of a :class:`~leadrouter_sdk.notify.Notice` (pure)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from leadrouter_sdk.notify import Notice

__all__ = ["BUTTONS", "blocks", "fallback_text"]

# action → (button text, style); Slack allows "primary" and "danger" only
BUTTONS: Final = {"accept": ("Accept", "primary"), "contacted": ("Contacted", None),
                  "reject": ("Reject", "danger")}


def _esc(text: str) -> str:
    """Slack mrkdwn: &, < and > are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _due(notice: Notice) -> str | None:
    if notice.due is None:
        return None
    due = notice.due.astimezone(dt.UTC)
    fallback = due.strftime("%Y-%m-%d %H:%M UTC")
    # Slack renders <!date^...> in the reader's own time zone
    text = f"<!date^{int(due.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"
    if notice.minutes_left is not None:
        text += f" ({notice.minutes_left} min left)"
    return text


def fallback_text(notice: Notice) -> str:
    """The notification text (shown in push notifications and where blocks are not)."""
    text = f"{notice.headline}: {notice.name} (lead {notice.lead_id})"
    if notice.due is not None:
        text += f", due {notice.due.astimezone(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}"
    return text


def _buttons(notice: Notice, interactive: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for action, (label, style) in BUTTONS.items():
        url = notice.links.get(action)
        if not url:
            continue
        button: dict[str, Any] = {"type": "button", "action_id": f"leadrouter_{action}",
                                  "text": {"type": "plain_text", "text": label}}
        if interactive and action != "reject":  # the Slack app's endpoint (interactions.py);
            button["value"] = url  # a reject needs a reason chosen on the link's page
        else:  # a URL button: Slack opens the signed link's confirmation page
            button["url"] = url
        if style:
            button["style"] = style
        out.append(button)
    return out


def blocks(notice: Notice, *, interactive: bool = False) -> list[dict[str, Any]]:
    """The message's blocks: header, lead summary, why, due time, action buttons."""
    head = f"*{_esc(notice.name)}*  ·  lead `{notice.lead_id}`"
    if notice.score:
        head += f"\nScore {_esc(notice.score)}"
    if notice.pool:
        head += f"  ·  pool {_esc(notice.pool)}"
    section: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": head}}
    if notice.summary:
        section["fields"] = [{"type": "mrkdwn", "text": f"*{label}*\n{_esc(value)}"[:2000]}
                             for label, value in notice.summary[:10]]
    out: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": notice.headline[:150]}},
        section]
    if notice.why:
        why = "\n".join(f"• {_esc(line)}" for line in notice.why)
        out.append({"type": "section", "text": {"type": "mrkdwn",
                                                "text": f"*Why you*\n{why}"[:3000]}})
    due = _due(notice)
    if due:
        out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"Due {due}"}]})
    buttons = _buttons(notice, interactive)
    if buttons:
        out.append({"type": "actions", "block_id": "leadrouter_actions", "elements": buttons})
    return out
