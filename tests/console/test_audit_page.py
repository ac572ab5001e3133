"""The console's Audit page (/ui/audit) in Debian's headless Chromium against a real service
and Valkey: the table names who did each change, the filter form narrows it, "Older" pages on,
filter text is rendered as text, a viewer is refused, and a screenshot is saved in tmp_path."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _browser import CHROMIUM, Page, chromium
from _console import browser_sign_in, create_key, goto, screenshot, submit, text_of, wait_until
from _service import ADMIN_TOKEN, AUTH, lead

# In CI (CI=true) a missing browser is a failure, not a skip: .ci/run installs it.
pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                reason="chromium is not installed")


@pytest.fixture
def browser() -> Iterator[Callable[[], Page]]:
    with chromium() as open_page:
        yield open_page


def _rows(page: Page) -> list[list[str]]:
    rows = page.js("[...document.querySelectorAll('table.audit tbody tr')].map(tr => "
                   "[...tr.children].slice(1, 4).map(td => td.textContent.trim()))")
    return list(rows or [])


def test_the_audit_page_lists_filters_and_pages(start_service: Callable[..., Any],
                                                browser: Callable[[], Page], tmp_path: Path,
                                                rules_dir: Path) -> None:
    server = start_service(rules_dir=str(rules_dir))
    with server.client() as client:
        key, key_id = create_key(client, AUTH, "admin", name="ops")
        viewer_key, viewer_id = create_key(client, AUTH, "viewer")
        as_key = {"Authorization": f"Bearer {key}"}
        assert client.put("/v1/reps/r1", headers=as_key,
                          json={"status": "out_of_office"}).status_code == 200
        assert client.put("/v1/accounts/acme.com", headers=AUTH,
                          json={"owner": "r2"}).status_code == 200
        scoring = rules_dir / "scoring.yaml"
        good = scoring.read_text()
        scoring.write_text(good.replace('"employees >= 1000"', '"employees >>= 1000"'))
        assert client.post("/v1/admin/rules/reload", headers=as_key).status_code == 422
        scoring.write_text(good)
        email = "gone@secret.example"
        assert client.post("/v1/leads", json=lead(email=email)).status_code == 201
        assert client.delete(f"/v1/people/{email}", headers=AUTH).status_code == 200
        for i in range(55):
            assert client.put(f"/v1/reps/r{2 + i % 2}", headers=AUTH, json={
                "status": ("away", "available")[i % 2]}).status_code == 200
    page = browser()
    page.send("Page.enable")
    browser_sign_in(page, server.url, ADMIN_TOKEN)
    goto(page, f"{server.url}/ui/audit")
    assert text_of(page, "nav [aria-current=page]") == "Audit"
    first = _rows(page)
    # the newest: this sign-in (console sign-ins are audited)
    assert first[0] == ["console:admin-token", "console.signin", "console"]
    assert len(first) == 50 and first[1][1] == "rep.status"
    assert first[1][0] == "admin-token"

    # "Older" continues below the first page: the oldest four entries are at its end
    submit_older = "document.querySelector('a.older').click()"
    page.events.clear()
    page.js(submit_older)
    page.wait_for("Page.loadEventFired")
    wait_until(page, "location.search.includes('cursor=') && document.readyState === 'complete'")
    second = _rows(page)
    assert len(second) == 12 and not page.js("document.querySelector('a.older')")
    assert second[-6:-4] == [["admin-token", "lead.erased", second[-6][2]],
                             [f"key:{key_id}", "rules.reload.rejected", "rules"]]
    assert "scoring.yaml:3" in text_of(page, "ul.errors")
    assert "secret" not in text_of(page, "main")  # an erasure: counts, never whose
    screenshot(page, tmp_path, "audit")
    assert second[-4:] == [
        ["admin-token", "account.owner", "account:acme.com"],
        [f"key:{key_id}", "rep.status", "rep:r1"],
        ["admin-token", "apikey.created", f"apikey:{viewer_id}"],
        ["admin-token", "apikey.created", f"apikey:{key_id}"]]
    assert "out_of_office" in page.js(
        "document.querySelector('tr:nth-last-child(3) td:last-child').textContent")

    # the filter form: one action, then the actor by a link in the table
    goto(page, f"{server.url}/ui/audit")
    page.js("document.querySelector('#action').value = 'apikey.created'")
    submit(page, "form[action='/ui/audit']", "/ui/audit")
    assert [r[1] for r in _rows(page)] == ["apikey.created", "apikey.created"]
    goto(page, f"{server.url}/ui/audit?actor=key:{key_id}")
    assert _rows(page) == [[f"key:{key_id}", "rules.reload.rejected", "rules"],
                           [f"key:{key_id}", "rep.status", "rep:r1"]]

    # whatever is typed into a filter is shown as text, never run
    goto(page, f"{server.url}/ui/audit?target=%3Cscript%3Ewindow.pwned%3D1%3C%2Fscript%3E")
    assert page.js("document.querySelector('#target').value") == \
        "<script>window.pwned=1</script>"
    assert page.js("window.pwned") is None
    assert page.js("document.querySelectorAll('main script').length") == 0
    goto(page, f"{server.url}/ui/audit?action=rep.deleted")
    assert "rep.status" in text_of(page, "[role=alert]")

    # a viewer is refused on the server
    goto(page, f"{server.url}/ui/audit")
    page.js("document.querySelector('form.signout button').click()")
    wait_until(page, "location.pathname === '/ui/login'")
    browser_sign_in(page, server.url, viewer_key)
    goto(page, f"{server.url}/ui/audit")
    assert "viewer" in text_of(page, "[role=alert]") and _rows(page) == []
