#!/usr/bin/env python3
"""The dashboard in a real browser: Debian's Chromium driven by Playwright.

Starts the real `ibiki-server` (in memory, on a free loopback port, with a
known admin token), then signs in, edits numbers, checks the inline 422 and
409 errors, adds a client, looks up an owner, watches a webhook reply arrive
live in an open inbox, and checks that a hostile reply is shown as text.
Then a client: the operator creates its access key on the clients page, the
client signs in with it, sees its replies arrive live, cannot read another
client's inbox by editing the URL, and is signed out once the key is revoked.
Then forwarding, on a second server that allows endpoints on this machine: a
receiver started here answers 500, the operator sets a client's endpoint on
the clients page, watches its row go to failing with a pending delivery,
opens the client's deliveries, switches the receiver to 204 and retries the
delivery by hand until it is delivered, signed with the secret the page
showed. (The first server, like production, refuses an endpoint on the
cloud metadata address with the server's reason.)
Screenshots land in docs/src/screenshots/ (the guide shows them).

    python3 e2e/dashboard.py [path/to/ibiki-server]

The server binary defaults to $IBIKI_SERVER, else the debug or release build
under $CARGO_TARGET_DIR (or target/). The browser is $CHROMIUM, else
/usr/bin/chromium.
"""

import base64
import hashlib
import hmac
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "src" / "screenshots"
TOKEN = "e2e-admin-token"
LIVE_WITHIN_MS = 1000
XSS_BODY = "<img src=x onerror=alert(1)>"
XSS_FROM = "<script>alert(2)</script>"
# Every client key the run created, to look for in the server's log.
CLIENT_KEYS = []
# Every endpoint secret the pages showed, likewise.
SECRETS = []
LOG = Path(os.environ.get("E2E_SERVER_LOG", "/tmp/ibiki-e2e-server.log"))
FORWARDING_LOG = LOG.with_suffix(".forwarding.log")


def server_binary():
    if len(sys.argv) > 1:
        return Path(sys.argv[1])
    if os.environ.get("IBIKI_SERVER"):
        return Path(os.environ["IBIKI_SERVER"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    candidates = [target / p / "ibiki-server" for p in ("debug", "release")]
    existing = [c for c in candidates if c.exists()]
    if not existing:
        sys.exit(f"e2e: no ibiki-server in {target}; build it first")
    return max(existing, key=lambda c: c.stat().st_mtime)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, extra_args=(), log=LOG):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("IBIKI_") and k != "DATABASE_URL"}
        self.log_path = log
        self.log = open(log, "w")
        self.process = subprocess.Popen(
            [str(binary), "--listen", f"127.0.0.1:{self.port}", "--admin-token", TOKEN, *extra_args],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"e2e: the server exited at start; see {log}")
            try:
                self.call("GET", "/healthz", auth=False)
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        sys.exit("e2e: the server did not answer /healthz")

    def call(self, method, path, body=None, auth=True, headers=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if auth:
            request.add_header("Authorization", f"Bearer {TOKEN}")
        if body is not None:
            request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def json(self, method, path, body=None):
        status, _, raw = self.call(method, path, body)
        return status, json.loads(raw)

    def numbers_of(self, user_id):
        status, body = self.json("GET", f"/api/admin/clients/{urllib.parse.quote(user_id, safe='')}/phone-numbers")
        assert status == 200, body
        return body["phoneNumbers"]

    def assign(self, user_id, numbers):
        status, body = self.json("POST", "/api/admin/update-phone-numbers", {"userId": user_id, "phoneNumbers": numbers})
        assert status == 200, body
        return body

    def webhook(self, message_id, to, body, sender="+15005550006"):
        status, answer = self.json(
            "POST", "/webhooks/sms", {"messageId": message_id, "from": sender, "to": to, "body": body}
        )
        assert status == 200, answer
        return answer

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError("the server did not stop within 10 s of SIGTERM (open streams?)")
        finally:
            self.log.close()


def check(name, condition, detail=""):
    if not condition:
        raise AssertionError(f"{name}: {detail}")
    print(f"  ok  {name}")


def main():
    binary = server_binary()
    print(f"e2e: {binary}")
    server = Server(binary)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        run(server)
    finally:
        server.stop()
    log = LOG.read_text()
    check("the token is in no server log line", TOKEN not in log)
    check("no client key is in a server log line", CLIENT_KEYS and not any(k in log for k in CLIENT_KEYS))
    forwarding(binary)
    find_among_many(binary)
    print("e2e: the dashboard passed in Chromium")


def headers_of(server, path):
    status, headers, _ = server.call("GET", path, auth=False)
    return status, {k.lower(): v for k, v in headers.items()}


def run(server):
    # The pages' security headers.
    for path in [
        "/",
        "/held",
        "/inbox/alice",
        "/clients/alice/deliveries",
        "/assets/app.css",
        "/assets/api.js",
        "/assets/deliveries.js",
    ]:
        status, headers = headers_of(server, path)
        csp = headers.get("content-security-policy", "")
        check(
            f"{path}: strict headers",
            status == 200
            and "default-src 'self'" in csp
            and "script-src 'self'" in csp
            and "style-src 'self'" in csp
            and "object-src 'none'" in csp
            and "frame-ancestors 'none'" in csp
            and "base-uri 'none'" in csp
            and "unsafe-inline" not in csp
            and headers.get("x-content-type-options") == "nosniff"
            and headers.get("referrer-policy") == "no-referrer",
            headers,
        )

    # Data the pages start with; the first normalization also warms up.
    server.assign("alice", "+14155550100")
    server.assign("bob", "+14155550101")
    server.webhook("SM-held", "+14155550103", "held until someone owns it")
    server.webhook("SM-old", "+14155550100", "An earlier reply")

    executable = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            desktop(server, browser)
            endpoint_refused(server, browser)
            client_access(server, browser)
            phone(server, browser)
            paging(server, browser)
        finally:
            browser.close()


def watch(page):
    """Records script errors, dialogs and CSP violations of a page."""
    trouble = []
    page.on("pageerror", lambda e: trouble.append(f"page error: {e}"))
    page.on("dialog", lambda d: (trouble.append(f"dialog: {d.message}"), d.dismiss()))
    # The browser logs each 4xx answer the page expects (401, 422, 409) as a
    # console error; those are not trouble, anything else is.
    page.on(
        "console",
        lambda m: trouble.append(f"console {m.type}: {m.text}")
        if m.type == "error" and "Failed to load resource" not in m.text
        else None,
    )
    return trouble


def sign_in(page, server):
    page.goto(server.base + "/")
    token = page.get_by_label("Admin token")
    expect(token).to_be_visible()
    token.fill(TOKEN)
    token.press("Enter")
    expect(page.get_by_role("heading", name="Clients", exact=True)).to_be_visible()


def desktop(server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, color_scheme="light")
    page = context.new_page()
    trouble = watch(page)
    base = server.base

    # Sign in: a wrong token is refused, the right one is kept in the tab only.
    page.goto(base + "/")
    token = page.get_by_label("Admin token")
    expect(token).to_be_visible()
    token.fill("wrong-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_contain_text("refused")
    token.fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Clients", exact=True)).to_be_visible()
    check("sign-in keeps the token in sessionStorage", page.evaluate("sessionStorage.getItem('ibiki.accessKey')") == TOKEN)
    check("no cookie, no token in the URL", page.evaluate("document.cookie") == "" and TOKEN not in page.url)
    check("no localStorage", page.evaluate("localStorage.length") == 0)
    # Trusted Types: the page refuses to parse HTML from a string.
    refused = page.evaluate(
        "() => { try { document.body.insertAdjacentHTML('beforeend', '<b>x</b>'); return false } catch (e) { return true } }"
    )
    check("HTML sinks are refused by the page's policy", refused)
    trouble.clear()  # the probe's own report

    # The clients table: one labelled field per client.
    alice = page.get_by_label("Assigned numbers for alice", exact=True)
    bob = page.get_by_label("Assigned numbers for bob", exact=True)
    expect(alice).to_have_value("+14155550100")
    expect(bob).to_have_value("+14155550101")
    check("placeholder", alice.get_attribute("placeholder") == "+1111, +2222, +3333")
    width = alice.evaluate("e => e.getBoundingClientRect().width")
    check("the numbers field is wide", width >= 500, f"{width}px")

    # Typing and leaving the field saves; the released held reply is counted.
    alice_status = page.locator(f"#{alice.get_attribute('id')}-status")
    alice.fill("+14155550100, +1 415 555 0102, +14155550103")
    alice.press("Tab")
    expect(alice_status).to_contain_text("Saved: 3 numbers")
    expect(alice_status).to_contain_text("1 held reply released")
    check("saved through the API", server.numbers_of("alice") == ["+14155550100", "+14155550102", "+14155550103"])
    expect(alice).to_have_value("+14155550100, +14155550102, +14155550103")

    # A bad entry: named with its reason, the text kept, nothing changed.
    typed = "+14155550100, not-a-number, +14155550102"
    alice.fill(typed)
    alice.press("Tab")
    problems = page.locator(f"#{alice.get_attribute('id')}-problems")
    expect(alice_status).to_contain_text("Not saved")
    expect(problems).to_contain_text("not-a-number")
    expect(alice).to_have_value(typed)
    expect(alice).to_have_attribute("aria-invalid", "true")
    check("422 changed nothing", server.numbers_of("alice") == ["+14155550100", "+14155550102", "+14155550103"])

    # Another client's number: the owner is named.
    alice.fill("+14155550100, +14155550101")
    alice.press("Enter")
    expect(problems).to_contain_text("+14155550101")
    expect(problems).to_contain_text("is assigned to bob")
    check("409 changed nothing", server.numbers_of("alice") == ["+14155550100", "+14155550102", "+14155550103"])
    alice.fill("+14155550100, +14155550102, +14155550103")
    alice.press("Enter")
    expect(alice_status).to_contain_text("Saved")
    expect(problems).to_be_hidden()

    # Add client.
    page.get_by_label("User ID").fill("carol")
    page.get_by_label("Phone numbers").fill("+14155550104, +14155550105")
    page.get_by_role("button", name="Add client").click()
    expect(page.locator("#add-status")).to_contain_text("Added carol")
    expect(page.get_by_label("Assigned numbers for carol", exact=True)).to_have_value("+14155550104, +14155550105")
    check("added through the API", server.numbers_of("carol") == ["+14155550104", "+14155550105"])
    # An existing id is not overwritten.
    page.get_by_label("User ID").fill("bob")
    page.get_by_label("Phone numbers").fill("+14155550109")
    page.get_by_role("button", name="Add client").click()
    expect(page.locator("#add-status")).to_contain_text("already exists")
    check("bob untouched", server.numbers_of("bob") == ["+14155550101"])
    page.get_by_label("User ID").fill("")
    page.get_by_label("Phone numbers").fill("")

    # Find a client: by a number it owns, written loosely, then by the start
    # of its id; the table shows what was found.
    search = page.get_by_role("searchbox", name="Find a client")
    search.fill("+1 (415) 555-0101")
    search.press("Enter")
    expect(page.locator("#find-result")).to_contain_text("+14155550101 is assigned to bob")
    expect(page.locator("#clients tbody tr")).to_have_count(1)
    expect(page.get_by_label("Assigned numbers for bob", exact=True)).to_have_value("+14155550101")
    search.fill("car")
    page.get_by_role("button", name="Find", exact=True).click()
    expect(page.locator("#find-result")).to_contain_text("1 client whose ID starts with “car”")
    expect(page.get_by_label("Assigned numbers for carol", exact=True)).to_be_visible()
    expect(page.locator("#clients tbody tr")).to_have_count(1)
    page.get_by_role("button", name="Show all clients").click()
    expect(page.locator("#clients tbody tr")).to_have_count(3)

    # Keyboard: Tab from the top reaches a numbers field.
    page.locator("body").focus()
    reached = False
    for _ in range(30):
        page.keyboard.press("Tab")
        label = page.evaluate("document.activeElement && document.activeElement.getAttribute('aria-label')")
        if label and label.startswith("Assigned numbers for"):
            reached = True
            break
    check("a numbers field is reachable by keyboard", reached)
    page.locator("body").click(position={"x": 5, "y": 600})
    page.screenshot(path=str(SHOTS / "clients.png"), full_page=True)

    # The inbox: earlier replies, then a webhook reply appears without reload.
    page.goto(base + "/inbox/alice")
    expect(page.get_by_role("heading", name="Inbox of alice")).to_be_visible()
    replies = page.locator("#inbox li.reply")
    expect(replies).to_have_count(2)
    expect(page.locator("#live")).to_have_text("Live")
    page.evaluate("window.__loaded = true")
    server.webhook("SM-live", "+14155550102", "On my way, see you at 3")
    recorded = time.monotonic()
    expect(replies.nth(2)).to_contain_text("On my way, see you at 3", timeout=LIVE_WITHIN_MS * 3)
    shown_ms = (time.monotonic() - recorded) * 1000
    check(f"a webhook reply shows live ({shown_ms:.0f} ms after it was recorded)", shown_ms < LIVE_WITHIN_MS)
    check("without a reload", page.evaluate("window.__loaded === true"))

    # A hostile reply is text.
    server.webhook("SM-xss", "+14155550100", XSS_BODY, sender=XSS_FROM)
    expect(replies.nth(3)).to_contain_text(XSS_BODY)
    expect(replies.nth(3)).to_contain_text(XSS_FROM)
    page.wait_for_timeout(500)
    check("no element injected", page.locator("#inbox img, #inbox script").count() == 0)
    check("nothing ran", not any("dialog" in t for t in trouble), trouble)
    page.screenshot(path=str(SHOTS / "inbox.png"), full_page=True)

    # Held replies.
    server.webhook("SM-held-2", "+14155550199", "Who is this?")
    page.get_by_role("link", name="Held replies").click()
    expect(page.locator("#held-count")).to_have_text("1 held reply")
    expect(page.locator("#held li.reply")).to_contain_text("Who is this?")
    page.screenshot(path=str(SHOTS / "held.png"), full_page=True)

    # Delivered by hand: an empty client is refused on the page, then bob.
    held = page.locator("#held li.reply", has_text="Who is this?")
    deliver_to = held.get_by_label("Deliver to client")
    held.get_by_role("button", name="Deliver").click()
    expect(held.get_by_role("alert")).to_have_text("Enter the client's ID.")
    deliver_to.fill("bob")
    deliver_to.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Delivered the reply from +15005550006 to bob.")
    expect(page.locator("#held-count")).to_have_text("No held replies.")
    expect(page.locator("#held li.reply")).to_have_count(0)
    status, inbox = server.json("GET", "/api/clients/bob/messages")
    bodies = [m["body"] for m in inbox["messages"]]
    check("the reply delivered by hand is in bob's inbox", status == 200 and "Who is this?" in bodies, inbox)
    check(
        "delivered by hand",
        status == 200 and any(m["delivery"]["kind"] == "rerouted" for m in inbox["messages"]),
        inbox,
    )

    check("no script errors", not trouble, trouble)
    context.close()


def client_access(server, browser):
    """A client's own access key: created by the operator, shown once, opens
    that client's inbox live and nothing else, and stops when revoked."""
    operator = browser.new_context(
        viewport={"width": 1280, "height": 860}, permissions=["clipboard-read", "clipboard-write"]
    )
    admin = operator.new_page()
    admin_trouble = watch(admin)
    sign_in(admin, server)
    row = admin.locator("#clients tbody tr", has=admin.get_by_role("rowheader", name="alice", exact=True))
    row.get_by_role("button", name="New key").click()
    shown = row.locator("code.key")
    expect(shown).to_have_text(re.compile(r"^ibk_[A-Za-z0-9_-]{43}$"))
    key = shown.text_content()
    CLIENT_KEYS.append(key)
    row.get_by_role("button", name="Copy").click()
    expect(row.get_by_role("button", name="Copied")).to_be_visible()
    check("the copy button copies the key", admin.evaluate("navigator.clipboard.readText()") == key)
    listed = row.get_by_role("list", name="Access keys of alice")
    expect(listed.get_by_role("listitem")).to_have_count(1)
    expect(listed).to_contain_text(key[:12] + "…")
    check("the list shows the prefix, never the key", key[12:] not in listed.text_content())
    admin.screenshot(path=str(SHOTS / "clients-keys.png"), full_page=True)

    # The client signs in with its key, in a browser of its own.
    client = browser.new_context(viewport={"width": 1280, "height": 860})
    page = client.new_page()
    trouble = watch(page)
    page.goto(server.base + "/inbox/alice")
    field = page.get_by_label("Access key")
    expect(field).to_be_visible()
    field.fill(key)
    field.press("Enter")
    expect(page.get_by_role("heading", name="Inbox of alice")).to_be_visible()
    expect(page.locator("#live")).to_have_text("Live")
    expect(page.locator("#inbox-numbers")).to_contain_text("+14155550100")
    expect(page.get_by_role("navigation", name="Dashboard")).to_be_hidden()
    check("the operator's navigation is not shown", not page.get_by_role("link", name="Held replies").is_visible())
    replies = page.locator("#inbox li.reply")
    before = replies.count()
    server.webhook("SM-client-live", "+14155550100", "Seen with my own key")
    recorded = time.monotonic()
    expect(replies.nth(before)).to_contain_text("Seen with my own key", timeout=LIVE_WITHIN_MS * 3)
    shown_ms = (time.monotonic() - recorded) * 1000
    check(f"the client sees its reply live ({shown_ms:.0f} ms)", shown_ms < LIVE_WITHIN_MS)
    page.screenshot(path=str(SHOTS / "inbox-client.png"), full_page=True)

    # Editing the URL to another client's inbox shows the 403, not data.
    page.goto(server.base + "/inbox/bob")
    expect(page.locator("#inbox-error")).to_contain_text("403")
    expect(page.locator("#inbox-error")).to_contain_text("cannot open the inbox of bob")
    check("no reply of bob's is shown", page.locator("#inbox li.reply").count() == 0)
    check("bob's numbers are not shown", "+14155550101" not in page.locator("main").text_content())

    # Revoked by the operator: the client's open inbox signs out at its next
    # request (the next reply on its live stream).
    page.goto(server.base + "/inbox/alice")
    expect(page.locator("#live")).to_have_text("Live")
    listed.get_by_role("listitem").first.get_by_role("button", name="Revoke").click()
    expect(row.get_by_role("status")).to_contain_text("Revoked")
    admin.wait_for_timeout(1100)
    server.webhook("SM-after-revoke", "+14155550100", "Not for a revoked key")
    expect(page.get_by_label("Access key")).to_be_visible(timeout=5000)
    expect(page.locator("#signin-error")).to_contain_text("refused")
    check("the revoked key is signed out", page.evaluate("sessionStorage.getItem('ibiki.accessKey')") is None)
    check("the reply after revocation never reached it", "Not for a revoked key" not in page.content())
    check("no script errors (client)", not trouble, trouble)
    check("no script errors (operator)", not admin_trouble, admin_trouble)
    client.close()
    operator.close()


def client_row(page, user_id):
    return page.locator("#clients tbody tr", has=page.get_by_role("rowheader", name=user_id, exact=True))


def endpoint_refused(server, browser):
    """Without --allow-private-endpoints (as in production) the cloud
    metadata address is refused, with the server's reason in the row."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    trouble = watch(page)
    sign_in(page, server)
    row = client_row(page, "bob")
    field = row.get_by_label("Endpoint URL")
    status = row.locator(".endpoint-cell .status")
    expect(row.locator(".endpoint-line")).to_contain_text("No endpoint")
    row.get_by_role("button", name="Save endpoint").click()
    expect(status).to_contain_text("Enter the URL")
    field.fill("http://169.254.169.254/latest/meta-data")
    field.press("Enter")
    expect(status).to_contain_text("Not saved: the host 169.254.169.254 is a link-local (cloud metadata) address")
    expect(status).to_contain_text("only public addresses are called")
    expect(field).to_have_attribute("aria-invalid", "true")
    code, _, raw = server.call("GET", "/api/admin/clients/bob/endpoint")
    check("the refused endpoint was not set", code == 404 and json.loads(raw)["error"] == "endpoint_not_found", raw)
    check("no script errors (refused endpoint)", not trouble, trouble)
    context.close()


# The receiver's answer while it is "down": an error page, long enough to be
# cut in the table, with markup that must stay text.
DOWN_BODY = (
    "<html><head><title>500 Internal Server Error</title></head><body>"
    "<h1>Internal Server Error</h1><img src=x onerror=alert(3)>"
    "<p>The CRM is down for maintenance until 03:00 UTC. Please retry later; "
    "queued requests are not lost.</p></body></html>"
)


class Receiver:
    """A client's endpoint on this machine: `/always-ok` answers 204, every
    other path `answer` (500 with DOWN_BODY until switched to 204)."""

    def __init__(self):
        self.answer = 500
        self.requests = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                code = 204 if self.path == "/always-ok" else receiver.answer
                receiver.requests.append(
                    {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body, "code": code}
                )
                self.send_response(code)
                payload = DOWN_BODY.encode() if code >= 400 else b""
                if payload:
                    self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def received(self, path):
        return [r for r in list(self.requests) if r["path"] == path]

    def wait_for(self, path, count, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.received(path)) >= count:
                return self.received(path)
            time.sleep(0.05)
        raise AssertionError(f"the receiver got {len(self.received(path))} requests on {path}, not {count}")

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def signed_with(secret, request):
    """Whether a request's Standard Webhooks signature is `secret`'s."""
    headers = request["headers"]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + request["body"]
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return expected in headers.get("webhook-signature", "").split(" ")


def wait_until(what, condition, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


def forwarding(binary):
    """Endpoints and deliveries, on a server whose endpoints may be on this
    machine, its retries an hour apart (so only Retry attempts again)."""
    receiver = Receiver()
    server = Server(
        binary, ["--allow-private-endpoints", "--delivery-retry-schedule", "1h"], log=FORWARDING_LOG
    )
    executable = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            try:
                endpoints(server, receiver, browser)
            finally:
                browser.close()
    finally:
        server.stop()
        receiver.stop()
    log = FORWARDING_LOG.read_text()
    check("no endpoint secret is in a server log line", SECRETS and not any(s in log for s in SECRETS))
    check("the token is in no server log line (forwarding)", TOKEN not in log)


def endpoint_state(server, user_id):
    status, body = server.json("GET", f"/api/admin/clients/{user_id}/endpoint")
    assert status == 200, body
    return body


def endpoints(server, receiver, browser):
    server.assign("dora", "+14155550120")
    server.assign("erin", "+14155550121")
    server.assign("finn", "+14155550122")
    # erin's endpoint takes everything; finn's is set, to be paused on the page.
    for user_id in ["erin", "finn"]:
        status, body = server.json("PUT", f"/api/admin/clients/{user_id}/endpoint", {"url": receiver.url("/always-ok")})
        assert status == 200, body
    server.webhook("SM-erin-1", "+14155550121", "Thanks, got it")
    receiver.wait_for("/always-ok", 1)

    context = browser.new_context(
        viewport={"width": 1280, "height": 860}, permissions=["clipboard-read", "clipboard-write"]
    )
    page = context.new_page()
    trouble = watch(page)
    sign_in(page, server)

    # dora has no endpoint: the operator sets one; the answer's secret is
    # shown once, with Copy.
    row = client_row(page, "dora")
    line = row.locator(".endpoint-line")
    expect(line).to_contain_text("No endpoint")
    field = row.get_by_label("Endpoint URL")
    expect(field).to_have_value("")
    field.fill(receiver.url("/dora"))
    row.get_by_role("button", name="Save endpoint").click()
    expect(row.locator(".endpoint-cell .status")).to_contain_text("Endpoint created")
    shown = row.locator(".endpoint-cell code.key")
    expect(shown).to_have_text(re.compile(r"^whsec_[A-Za-z0-9+/=]{40,}$"))
    secret = shown.text_content()
    SECRETS.append(secret)
    row.get_by_role("button", name="Copy").click()
    expect(row.get_by_role("button", name="Copied")).to_be_visible()
    check("the copy button copies the secret", page.evaluate("navigator.clipboard.readText()") == secret)
    expect(line).to_contain_text("delivering · 0 pending · 0 failed")
    check("the endpoint is set", endpoint_state(server, "dora")["url"] == receiver.url("/dora"))
    expect(client_row(page, "erin").locator(".endpoint-line")).to_contain_text("delivering · 0 pending · 0 failed")

    # finn's endpoint is paused from its row.
    finn = client_row(page, "finn")
    finn.get_by_role("button", name="Pause").click()
    expect(finn.locator(".endpoint-line")).to_contain_text("paused")
    expect(finn.get_by_role("button", name="Resume")).to_be_focused()
    check("paused through the API", endpoint_state(server, "finn")["enabled"] is False)

    # A reply to dora: the receiver answers 500; on reload the row says
    # since when it fails, and that the reply waits.
    server.webhook("SM-fw-1", "+14155550120", "Can we move it to Friday?")
    receiver.wait_for("/dora", 1)
    wait_until("the failed attempt is recorded", lambda: endpoint_state(server, "dora")["failingSince"] is not None)
    server.webhook("SM-fw-2", "+14155550120", "Also, bring the contract")
    receiver.wait_for("/dora", 2)
    wait_until("the second attempt is recorded", lambda: endpoint_state(server, "dora")["pending"] == 2)
    page.reload()
    expect(page.get_by_role("heading", name="Clients", exact=True)).to_be_visible()
    line = client_row(page, "dora").locator(".endpoint-line")
    expect(line).to_contain_text("failing since")
    expect(line).to_contain_text("2 pending · 0 failed")
    expect(line.locator(".endpoint-state")).to_have_attribute("data-state", "failing")
    expect(client_row(page, "finn").locator(".endpoint-line")).to_contain_text("paused")
    page.locator("body").click(position={"x": 5, "y": 5})
    page.screenshot(path=str(SHOTS / "endpoint.png"), full_page=True)

    # Its deliveries: both pending after one attempt, the receiver's error
    # page cut and shown as text.
    client_row(page, "dora").get_by_role("link", name="Deliveries").click()
    expect(page.get_by_role("heading", name="Deliveries of dora")).to_be_visible()
    expect(page.locator("#endpoint-summary")).to_contain_text(receiver.url("/dora"))
    expect(page.locator("#endpoint-summary")).to_contain_text("failing since")
    table = page.get_by_role("table")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(2)
    for header in ["ID", "Message ID", "Status", "Attempts", "Last attempt", "Next attempt", "Last status", "Last error"]:
        expect(table.get_by_role("columnheader", name=header, exact=True)).to_be_visible()
    first = rows.filter(has_text="SM-fw-1")
    cells = first.get_by_role("cell")
    expect(cells.nth(1)).to_have_text("pending")
    expect(cells.nth(2)).to_have_text("1")
    expect(cells.nth(5)).to_have_text("500")
    error = first.locator("td.last-error")
    expect(error).to_contain_text("500 Internal Server Error")
    summary = error.locator("summary")
    expect(summary).to_contain_text("…")
    check("the last error is cut", "queued requests are not lost" not in summary.inner_text())
    summary.click()
    expect(error.locator("pre")).to_contain_text("queued requests are not lost")
    check("the error page's markup stays text", page.locator("#deliveries img, #deliveries h1").count() == 0)
    summary.click()

    # The status filter.
    status_filter = page.get_by_label("Status")
    status_filter.select_option("failed")
    expect(page.locator("#deliveries-empty")).to_have_text("No failed deliveries.")
    check("the filter is in the URL", page.url.endswith("?status=failed"))
    status_filter.select_option("pending")
    expect(rows).to_have_count(2)
    status_filter.select_option("")
    expect(rows).to_have_count(2)

    # The receiver is back: Retry sends the first delivery again now, and its
    # row follows it to delivered.
    receiver.answer = 204
    first.get_by_role("button", name="Retry").click()
    expect(cells.nth(1)).to_have_text("delivered", timeout=10_000)
    expect(cells.nth(2)).to_have_text("2")
    expect(cells.nth(5)).to_have_text("204")
    expect(first.locator("td.last-error")).to_have_text("—")
    expect(page.locator("#deliveries-status")).to_contain_text("delivered")
    expect(first.get_by_role("button", name="Retry")).to_be_focused()
    attempts = receiver.received("/dora")
    check("the retry reached the receiver", len(attempts) == 3 and attempts[-1]["code"] == 204, len(attempts))
    check("signed with the secret the page showed", all(signed_with(secret, a) for a in attempts))
    check(
        "the same webhook-id and body on each attempt of a reply",
        attempts[0]["headers"]["webhook-id"] == attempts[2]["headers"]["webhook-id"]
        and attempts[0]["body"] == attempts[2]["body"],
    )
    expect(rows.filter(has_text="SM-fw-2").get_by_role("cell").nth(1)).to_have_text("pending")
    expect(page.locator("#endpoint-summary")).to_contain_text("delivering · 1 pending · 0 failed")
    page.locator("body").click(position={"x": 5, "y": 5})
    page.screenshot(path=str(SHOTS / "deliveries.png"), full_page=True)

    # Paging: 50 deliveries, then the next page.
    for i in range(51):
        server.webhook(f"SM-erin-page-{i:02}", "+14155550121", f"Reply {i}")
    receiver.wait_for("/always-ok", 52)
    page.goto(server.base + "/clients/erin/deliveries")
    expect(rows).to_have_count(50)
    page.get_by_role("button", name="Load more deliveries").click()
    expect(rows).to_have_count(52)
    expect(page.get_by_role("button", name="Load more deliveries")).to_be_hidden()
    check("the deliveries page pages", True)
    check("no script errors (endpoints)", not trouble, trouble)
    context.close()

    # On a phone, the page keeps to the screen (the table scrolls in place).
    phone_context = browser.new_context(
        viewport={"width": 375, "height": 812}, color_scheme="dark", device_scale_factor=2, is_mobile=True, has_touch=True
    )
    phone_page = phone_context.new_page()
    phone_trouble = watch(phone_page)
    sign_in(phone_page, server)
    expect(client_row(phone_page, "dora").locator(".endpoint-line")).to_contain_text("delivering")
    check("the clients page with endpoints fits 375 px", phone_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))
    phone_page.goto(server.base + "/clients/dora/deliveries")
    expect(phone_page.locator("#deliveries tbody tr")).to_have_count(2)
    check("the deliveries page fits 375 px", phone_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))
    check("no script errors (endpoints, phone)", not phone_trouble, phone_trouble)
    phone_context.close()


MANY_CLIENTS = 100_000
FOUND_WITHIN_MS = 1000


def find_among_many(binary):
    """"Find a client" among 100,000 clients imported into PostgreSQL: by the
    start of an id and by a number, each answered within a second."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        if os.environ.get("CI"):
            sys.exit("e2e: DATABASE_URL is required in CI for the 100,000-client search")
        print("  skipped: the 100,000-client search needs DATABASE_URL")
        return
    schema = f"ibiki_e2e_find_{os.getpid()}"
    csv_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"{schema}.csv"
    with open(csv_path, "w") as f:
        f.write("userId,phoneNumbers\n")
        for i in range(MANY_CLIENTS):
            f.write(f"client-{i:06},+1415{2000000 + i}\n")
    database = ["--database-url", url, "--database-schema", schema]
    env = {k: v for k, v in os.environ.items() if not k.startswith("IBIKI_") and k != "DATABASE_URL"}
    started = time.monotonic()
    imported = subprocess.run(
        [str(binary), "import", "--from-csv", str(csv_path), *database, "--format", "json"],
        env=env, capture_output=True, text=True, timeout=900,
    )
    check(
        f"{MANY_CLIENTS:,} clients imported ({time.monotonic() - started:.0f} s)",
        imported.returncode == 0 and json.loads(imported.stdout).get("clients") == MANY_CLIENTS,
        imported.stdout[-500:] + imported.stderr[-500:],
    )
    server = Server(binary, database)
    executable = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            page = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
            trouble = watch(page)
            sign_in(page, server)
            expect(page.locator("#clients tbody tr")).to_have_count(50)
            search = page.get_by_role("searchbox", name="Find a client")
            result = page.locator("#find-result")
            for query, expected, rows in [
                ("client-0999", "50+ clients whose ID starts with “client-0999”", 50),
                ("client-05432", "10 clients whose ID starts with “client-05432”", 10),
                ("+1 415 209 9999", "+14152099999 is assigned to client-099999", 1),
            ]:
                search.fill(query)
                began = time.monotonic()
                search.press("Enter")
                expect(result).to_contain_text(expected, timeout=FOUND_WITHIN_MS * 5)
                took_ms = (time.monotonic() - began) * 1000
                expect(page.locator("#clients tbody tr")).to_have_count(rows)
                check(f"“{query}” found among {MANY_CLIENTS:,} clients in {took_ms:.0f} ms", took_ms < FOUND_WITHIN_MS)
            page.screenshot(path=str(SHOTS / "clients-find.png"), full_page=True)
            check("no script errors (find)", not trouble, trouble)
            browser.close()
    finally:
        server.stop()
        subprocess.run(["psql", url, "-qc", f"DROP SCHEMA IF EXISTS {schema} CASCADE"], capture_output=True)
        csv_path.unlink(missing_ok=True)


def phone(server, browser):
    context = browser.new_context(
        viewport={"width": 375, "height": 812}, color_scheme="dark", device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    trouble = watch(page)
    sign_in(page, server)
    alice = page.get_by_label("Assigned numbers for alice", exact=True)
    expect(alice).to_be_visible()
    fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    check("the clients page fits 375 px", fits)
    box = alice.bounding_box()
    check("the numbers field spans the screen", box and box["width"] >= 300, box)
    alice.fill("+14155550100, oops")
    alice.press("Enter")
    expect(page.locator(f"#{alice.get_attribute('id')}-problems")).to_contain_text("oops")
    page.screenshot(path=str(SHOTS / "clients-375-dark.png"), full_page=True)
    alice.fill("+14155550100, +14155550102, +14155550103")
    alice.press("Enter")
    expect(page.locator(f"#{alice.get_attribute('id')}-status")).to_contain_text("Saved")

    page.goto(server.base + "/inbox/alice")
    expect(page.locator("#live")).to_have_text("Live")
    server.webhook("SM-phone", "+14155550100", "Running 10 minutes late, sorry!")
    expect(page.locator("#inbox li.reply").last).to_contain_text("Running 10 minutes late")
    check("the inbox fits 375 px", page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))
    page.screenshot(path=str(SHOTS / "inbox-375-dark.png"), full_page=True)
    check("no script errors", not trouble, trouble)
    context.close()


def paging(server, browser):
    """The clients table shows 50 rows, then the next page on request."""
    for i in range(55):
        server.assign(f"zz-{i:02}", f"+1415555{2000 + i}")
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    trouble = watch(page)
    sign_in(page, server)
    rows = page.locator("#clients tbody tr")
    expect(rows).to_have_count(50)
    page.get_by_role("button", name="Load more clients").click()
    expect(rows).to_have_count(58)
    expect(page.get_by_label("Assigned numbers for zz-54", exact=True)).to_have_value("+14155552054")
    expect(page.get_by_role("button", name="Load more clients")).to_be_hidden()
    check("the clients table pages", True)
    check("no script errors", not trouble, trouble)
    context.close()


if __name__ == "__main__":
    main()
