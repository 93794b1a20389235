"""Our web app (/app) in a real browser: Debian's Chromium driven by Playwright, a virtual WebAuthn authenticator
for the passkey, against the real stack. One journey: sign up → create → watch the steps arrive → play a song →
like → search → find it → sign out → the private smol is gone for a stranger. Screenshots of each page are saved
in test-artifacts/web/; any console error or failed request that the journey does not expect fails it."""

import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time

import httpx
import pytest
import pytest_asyncio

from commands.stack import ROOT, wait_for_port
from tests.support import ADDRESS, _stop, free_port, insert_smol, wait_for

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts" / "web"
STEPS = ["image", "description", "lyrics", "nsfw", "submit", "poll", "archive"]
# A step's states as the page shows them, recorded as they change (the stream may pass a state between two polls).
RECORD_STEPS = """
window.__steps = [];
new MutationObserver(() => {
  for (const li of document.querySelectorAll('li.step')) {
    const seen = li.dataset.step + ':' + li.className.replace('step ', '');
    if (!window.__steps.includes(seen)) window.__steps.push(seen);
  }
}).observe(document, {subtree: true, childList: true});
"""

playwright_api = pytest.importorskip("playwright.async_api")


@pytest.fixture(scope="module")
def web(stack):
    """An API process on http://localhost:<port>, the origin passkeys are made for (WebAuthn needs a host name,
    and localhost is a secure context without TLS)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    port = free_port()
    env = {**stack.env, "SMOL_WEBAUTHN_ORIGINS": json.dumps([f"http://localhost:{port}"]),
           "SMOL_WEBAUTHN_RP_IDS": json.dumps(["localhost"])}  # fmt: skip
    command = [sys.executable, "-m", "uvicorn", "api.app:app", "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning"]  # fmt: skip
    api = subprocess.Popen(command, env=env, cwd=ROOT)
    wait_for_port("127.0.0.1", port, proc=api)
    yield f"http://localhost:{port}"
    _stop(api)


@pytest_asyncio.fixture(scope="module")
async def browser(web):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with playwright_api.async_playwright() as p:
        args = ["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        yield browser
        await browser.close()


# Other test modules insert bare smol rows (no cover in the store) that public lists show: their covers are 404.
OTHER_TESTS_COVERS = (404, "/image/")


class Watched:
    """A page whose console errors and failed requests are collected; `expected` lists (status, path part) pairs
    the journey causes on purpose."""

    def __init__(self, page, base: str):
        self.page, self.base, self.problems, self.expected = page, base, [], {OTHER_TESTS_COVERS}
        page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _failed(self, request):
        if "net::ERR_ABORTED" not in (request.failure or ""):  # a stream or a player the page closed on purpose
            self.problems.append(f"request failed: {request.url} {request.failure}")

    def _response(self, response):
        if response.status >= 400:
            path = response.url.removeprefix(self.base)
            if not any(response.status == status and part in path for status, part in self.expected):
                self.problems.append(f"{response.status} {path}")

    def unexpected(self) -> list[str]:
        # the console repeats each expected failed load as "Failed to load resource: ... status of N"
        statuses = {status for status, _ in self.expected}
        expected_load = lambda p: p.startswith("console: Failed to load resource") and any(  # noqa: E731
            f"status of {s}" in p for s in statuses)
        return [p for p in self.problems if not expected_load(p)]

    async def shot(self, name: str) -> None:
        await self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def _steps_seen(page) -> list[str]:
    return await page.evaluate("window.__steps || []")


async def test_a_listener_signs_up_creates_watches_plays_likes_finds_and_a_stranger_cannot(web, browser):
    word = "zq" + "".join(secrets.choice("bdfgklmnprstvz") + secrets.choice("aeiou") for _ in range(4))
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.add_init_script(RECORD_STEPS)
    watched = Watched(page, web)
    timings, started = {}, time.perf_counter()

    def lap(name: str) -> None:
        timings[name] = round(time.perf_counter() - started, 1)

    cdp = await context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable")
    await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})  # fmt: skip

    # Listen: the public smols, then sign up with a passkey
    await page.goto(f"{web}/app/")
    await page.get_by_role("heading", name="Listen").wait_for()
    await watched.shot("1-listen")
    await page.get_by_role("button", name="Sign in with a passkey").click()
    await page.get_by_label("Name (for a new passkey)").fill("Frog Fan")
    await page.get_by_role("button", name="Make a new passkey").click()
    await page.locator("#who", has_text="Frog Fan").wait_for()
    lap("signed up")

    # Create a private smol and watch it being made
    await page.get_by_role("link", name="Create").click()
    await page.get_by_label("What should it be about?").fill(f"a private lullaby for a sleepy {word}")
    await page.get_by_label("Public").uncheck()
    await watched.shot("2-create")
    await page.get_by_role("button", name="Make it").click()
    await page.wait_for_url(re.compile(r".*/app/#/smol/[0-9a-f]{64}$"))
    smol_id = page.url.rsplit("/", 1)[1]
    watched.expected.add((409, f"/search/{smol_id}/similar"))  # "indexing in progress" until it is indexed
    await page.locator("li.step").first.wait_for()
    await watched.shot("3-in-progress")
    await page.get_by_role("heading", name="More like this").wait_for(timeout=120_000)  # the finished page
    lap("created and made")
    seen = await _steps_seen(page)
    print("\nsteps seen:", " ".join(seen))
    for step in STEPS:  # each step showed up as it was reached (the songs' poll and archive overlap to the end)
        assert any(f"{step}:{state}" in seen for state in ("running", "done", "reused")), (step, seen)
    for step in STEPS[:5]:
        assert f"{step}:done" in seen, (step, seen)
    await watched.shot("4-finished")
    cover = page.get_by_role("img", name=re.compile("^Cover of"))
    assert await cover.evaluate("img => img.complete && img.naturalWidth > 0"), "the smol's own cover did not load"

    # Play a song: its time advances
    audio = page.locator("audio").first
    await audio.evaluate("a => a.play()")
    for _ in range(200):  # (polled from here: the page's CSP forbids the evaluated predicates of wait_for_function)
        if await audio.evaluate("a => a.currentTime") > 0.5:
            break
        await asyncio.sleep(0.1)
    assert await audio.evaluate("a => a.currentTime") > 0.5, "the song does not play"
    lap("played")

    # Like it; the like holds after a reload
    await page.get_by_role("button", name="♡ Like").click()
    await page.get_by_role("button", name="♥ Liked").wait_for()
    await page.reload()
    await page.get_by_role("button", name="♥ Liked").wait_for()

    # Find it by a word of its prompt, typed in the search box (indexing follows the finished smol closely)
    found = page.locator(f'#results a[href="#/smol/{smol_id}"]')
    for _ in range(30):
        await page.get_by_role("searchbox", name="Search smols").fill(word)
        await page.get_by_role("button", name="Search", exact=True).click()
        await page.locator("#results").or_(page.get_by_text("No smol matches.")).wait_for()
        if await found.count():
            break
        await page.evaluate("location.hash = '#/'")
        await asyncio.sleep(1)
    assert await found.count(), "the smol was never found by search"
    lap("found")
    await watched.shot("5-search")

    # Sign out: for a stranger the private smol is nowhere
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_role("button", name="Sign in with a passkey").wait_for()
    await page.goto(f"{web}/app/#/search?q={word}")
    await page.get_by_text("No smol matches.").wait_for()
    watched.expected.add((404, f"/{smol_id}"))
    await page.goto(f"{web}/app/#/smol/{smol_id}")
    await page.get_by_role("heading", name="Not found").wait_for()
    await watched.shot("6-stranger")
    lap("gone for a stranger")
    print(f"\nweb journey (seconds since start): {timings}")
    assert watched.unexpected() == []
    await context.close()


async def test_a_mixtape_and_a_playlist_play_all_in_order(web, browser, stack, http, finished_smol):
    first = finished_smol["d1"]
    second = await http.post("/", json={"prompt": "a second frog for the tape"}, headers=stack.auth(ADDRESS))
    second = (await wait_for(http, second.text, stack.auth(ADDRESS)))["d1"]
    tape = {"title": "Frog tape", "desc": "two frogs", "smols": [first["Id"], second["Id"]]}
    made = await http.post("/mixtapes", json=tape, headers=stack.auth(ADDRESS))
    assert made.status_code == 201, made.text
    context = await browser.new_context()
    page = await context.new_page()
    watched = Watched(page, web)
    await page.goto(f"{web}/app/#/mixtape/{made.json()['id']}")
    await page.get_by_role("heading", name="Frog tape").wait_for()
    player = page.get_by_label("Play all, in order")
    await page.get_by_role("button", name="▶ Play all").click()
    assert (await player.get_attribute("src")).endswith(f"/song/{first['Song_1']}.mp3")
    await player.evaluate("a => a.dispatchEvent(new Event('ended'))")  # the first song ends: the next one plays
    assert (await player.get_attribute("src")).endswith(f"/song/{second['Song_1']}.mp3")
    await page.get_by_text("2 of 2").wait_for()
    await watched.shot("mixtape")
    await page.goto(f"{web}/app/#/playlist/frogs")
    await page.get_by_role("heading", name="Playlist: frogs").wait_for()
    await page.locator(f'a[href="#/smol/{first["Id"]}"]').first.wait_for()
    await watched.shot("playlist")
    assert watched.unexpected() == []
    await context.close()


async def test_pages_fit_a_phone_and_controls_are_labelled(web, browser, pool):
    # (a creator may name a smol with one long word: here the newest in the list, and liked into trending)
    unbroken = await insert_smol(pool, address="G" + "W" * 55)
    await pool.execute("UPDATE smols SET title = $1 WHERE id = $2", "Supercalifragilistic" * 10, unbroken["id"])
    await pool.execute("INSERT INTO likes (id, address) VALUES ($1, 'GLIKESLONGWORDS')", unbroken["id"])
    context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = await context.new_page()
    watched = Watched(page, web)
    pages = [("phone-listen", "#/", "Listen"), ("phone-trending", "#/trending", "Trending this week"),
             ("phone-catalog", "#/catalog", "SoundFlow"), ("phone-create", "#/create", "Create")]
    for name, path, heading in pages:
        await page.goto(f"{web}/app/{path}")
        await page.get_by_role("heading", name=heading).first.wait_for()
        for _ in range(100):  # the page's content, not only its heading
            if "Loading" not in await page.locator("main").inner_text():
                break
            await asyncio.sleep(0.1)
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name
        unlabelled = await page.evaluate("""[...document.querySelectorAll('input, textarea, button, audio')]
            .filter(e => !e.hidden && !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                         && !e.textContent.trim() && e.type !== 'hidden').map(e => e.outerHTML)""")  # fmt: skip
        assert unlabelled == [], (name, unlabelled)
        await watched.shot(name)
    # the keyboard reaches the skip link, then the navigation
    await page.evaluate("document.activeElement.blur()")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.getAttribute('href')") == "#/"
    assert watched.unexpected() == []
    await context.close()


async def test_the_app_is_served_with_a_strict_content_security_policy(web):
    async with httpx.AsyncClient(base_url=web.replace("localhost", "127.0.0.1")) as client:
        page = await client.get("/app/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "script-src 'self'" in page.headers["content-security-policy"]
        script = await client.get("/app/app.js")
        assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
        for outside in ("/app/__init__.py", "/app/%2e%2e/__init__.py", "/app/..%2f..%2fsmol/settings.py"):
            assert (await client.get(outside)).status_code == 404, outside
