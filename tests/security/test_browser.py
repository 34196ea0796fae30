"""In Chromium: the login page, a labeler's vote after "Try the other expert", no tracking pixel, their Data tab."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from forensics.preference_store import PreferenceStore
from tests.security.conftest import PASSWORDS, REPLY
from tests.support.app_process import ROOT

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "artifacts"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed (apt-get install chromium)")
def test_labeler_signs_in_votes_on_the_pair_on_screen_and_sees_their_data(workbench, backend):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pixel = f"{backend.url}/pixel.png"
    backend.configure(reply=f"Here you go. ![tracking pixel]({pixel}) <img src=\"{pixel}?raw\"> Done.")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(f"{workbench.url}/team/")
                page.wait_for_selector("input[type=password]", timeout=60_000)
                page.screenshot(path=str(ARTIFACTS / "login.png"))
                page.locator("input[type=text]").first.fill("bob")
                page.locator("input[type=password]").fill(PASSWORDS["bob"])
                page.locator("button", has_text="Login").click()
                page.wait_for_selector("#chat-input textarea", timeout=60_000)
                page.wait_for_function("document.querySelector('#viewer')?.innerText.includes('Signed in as bob')",
                                       timeout=30_000)

                page.fill("#chat-input textarea", "Write a python function that adds two numbers")
                page.click("#send")
                page.wait_for_function("document.querySelector('#chatbot').innerText.includes('Done.')",
                                       timeout=60_000)
                page.wait_for_timeout(1000)  # time for any image the page would load
                chat_text = page.inner_text("#chatbot")

                page.click("#try-other")
                page.wait_for_function(
                    "document.querySelector('#compare-side-b')?.innerText.includes('tok/s')", timeout=60_000)
                dropdown_a = page.input_value("#compare-a input")
                dropdown_b = page.input_value("#compare-b input")
                side_a, side_b = page.inner_text("#compare-side-a"), page.inner_text("#compare-side-b")
                page.click("#vote-b")
                page.wait_for_function(
                    "document.querySelector('#compare-saved').innerText.includes('Saved preference')", timeout=30_000)
                page.click("#vote-a")
                page.wait_for_function(
                    "document.querySelector('#compare-saved').innerText.includes('Changed your vote')",
                    timeout=30_000)
                page.screenshot(path=str(ARTIFACTS / "compare-voted.png"), full_page=True)

                page.get_by_role("tab", name="Data").click()
                page.click("#data-refresh")
                page.wait_for_function(
                    "document.querySelector('#data-message')?.innerText.includes('Your records (bob)')",
                    timeout=30_000)
                page.wait_for_selector("#data-chart .js-plotly-plot", timeout=30_000)
                page.screenshot(path=str(ARTIFACTS / "data-labeler.png"), full_page=True)
                data_text = page.inner_text("#data-preferences")
            finally:
                browser.close()
    finally:
        backend.configure(reply=REPLY)

    assert "Done." in chat_text and "tracking pixel" in chat_text
    assert not [r for r in backend.requests if r.path.startswith("/pixel.png")], "an image was fetched from elsewhere"
    assert (dropdown_a, dropdown_b) == ("professor", "zoomer")
    assert "professor" in side_a.split("\n")[0] and "zoomer" in side_b.split("\n")[0]
    with PreferenceStore(workbench.store) as store:
        mine = [p for p in store.preferences(user="bob") if p.prompt.startswith("Write a python function that adds")]
    assert len(mine) == 1, "a second vote on the pair replaced the first"
    assert (mine[0].expert_a, mine[0].expert_b, mine[0].verdict) == (dropdown_a, dropdown_b, "a")
    assert "bob" in data_text and "carol" not in data_text


# WORKBENCH_SCREENSHOTS=DIR keeps a copy of each tab's screenshot there (docs/screenshots/ was made this way).
SCREENS = Path(os.environ["WORKBENCH_SCREENSHOTS"]) if os.environ.get("WORKBENCH_SCREENSHOTS") else None


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed (apt-get install chromium)")
def test_an_admin_sees_every_tab_tell_the_truth(workbench, tmp_path):
    """One screenshot per tab at 1280 x 800: Chat with an L2 card and a follow-up, Compare after a vote, Benchmarks after a
    sweep, Data and Inbox; the card's routes follow its scores and the pop-ups carry no Markdown."""
    from playwright.sync_api import sync_playwright

    shots = tmp_path / "screens"
    shots.mkdir()

    def shoot(page, name):
        page.screenshot(path=str(shots / f"{name}.png"))
        if SCREENS is not None and SCREENS.is_dir():
            shutil.copy(shots / f"{name}.png", SCREENS / f"{name}.png")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{workbench.url}/team/")
            page.wait_for_selector("input[type=password]", timeout=60_000)
            page.locator("input[type=text]").first.fill("alice")
            page.locator("input[type=password]").fill(PASSWORDS["alice"])
            page.locator("button", has_text="Login").click()
            page.wait_for_selector("#chat-input textarea", timeout=60_000)

            page.fill("#chat-input textarea", "why is the sky blue during the day but red at sunset")
            page.click("#send")
            page.wait_for_function("document.querySelector('#chatbot').innerText.includes('tok/s')", timeout=60_000)
            card = page.inner_text("#chatbot")
            scores = [float(c.inner_text()) for c in page.locator("#chatbot table tbody td:nth-child(3)").all()]
            shoot(page, "chat")
            toasts = page.locator(".toast-body").all_inner_texts()

            page.click("#try-other")
            page.wait_for_function("document.querySelector('#compare-side-b')?.innerText.includes('tok/s')",
                                   timeout=60_000)
            compare_card = page.inner_text("#compare-card")
            page.click("#vote-a")
            page.wait_for_function("document.querySelector('#compare-saved').innerText.includes('Saved preference')",
                                   timeout=30_000)
            shoot(page, "compare")

            page.get_by_role("tab", name="Chat").click()
            page.fill("#chat-input textarea", "why?")  # a follow-up: keeps the conversation's route
            page.click("#send")
            page.wait_for_function("document.querySelector('#chatbot').innerText.includes('follow-up: kept')",
                                   timeout=60_000)
            page.wait_for_function("document.querySelector('#chatbot').innerText.split('tok/s').length > 2",
                                   timeout=60_000)
            follow_up = page.inner_text("#chatbot")
            shoot(page, "chat-follow-up")

            page.get_by_role("tab", name="Benchmarks").click()
            page.fill("#bench-grid textarea, #bench-grid input", "router=keyword,hybrid")
            page.click("#bench-run")
            page.wait_for_selector("#bench-accuracy .js-plotly-plot", timeout=120_000)
            page.locator("#bench-accuracy").scroll_into_view_if_needed()
            shoot(page, "benchmarks")
            ticks = page.locator("#bench-accuracy .ytick text").all_text_contents()

            page.get_by_role("tab", name="Data").click()
            page.wait_for_function("document.querySelector('#data-message')?.innerText.includes('All users')",
                                   timeout=30_000)
            page.wait_for_selector("#data-chart .js-plotly-plot", timeout=30_000)
            shoot(page, "data")
            page.locator("#data-preferences [role=gridcell]:visible, #data-preferences td:visible").filter(
                has_text="sky blue").first.click(timeout=10_000)
            page.wait_for_selector("#data-pref-confirm", state="visible", timeout=30_000)
            confirm = page.inner_text("#data-pref-confirm")

            page.get_by_role("tab", name="Inbox").click()
            page.wait_for_function("document.querySelector('#inbox-message')?.innerText.includes('items from')",
                                   timeout=60_000)
            page.locator("#inbox-table [role=gridcell]:visible, #inbox-table td:visible").nth(1).click(timeout=10_000)
            page.wait_for_function("document.querySelector('#inbox-current')?.innerText.includes('goes to')",
                                   timeout=30_000)
            shoot(page, "inbox")
        finally:
            browser.close()

    assert "tier L2" in card and scores == sorted(scores, reverse=True), "routes in the order of their scores"
    assert "tier context" in follow_up and "follow-up: kept 'knowledge' from turn 1" in follow_up
    assert not any("`" in t for t in toasts), "no raw Markdown in pop-ups"
    assert "From the chat" in compare_card
    assert "Delete preference #" in confirm, "a selected row asks before it is deleted"
    assert ticks and all(t.startswith("c") and len(t) <= 3 for t in ticks), "short configuration labels"
    assert sorted(f.name for f in shots.iterdir()) == ["benchmarks.png", "chat-follow-up.png", "chat.png",
                                                       "compare.png", "data.png", "inbox.png"]
