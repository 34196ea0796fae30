"""The launched workbench: a real `python app.py` process against the Ollama-protocol test server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from tests.support.backends import FakeLLMServer, unused_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "artifacts"))
REPLY = "A linked list is reversed by walking it once and flipping each next pointer."
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def launch(*overrides: str) -> tuple[subprocess.Popen, str]:
    port = unused_port()
    proc = subprocess.Popen(
        [sys.executable, "app.py", f"app.port={port}", *overrides],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited early:\n{proc.stdout.read()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("app.py did not start within 180 s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def backend():
    with FakeLLMServer(reply=REPLY, chunk_delay=0.02) as server:
        yield server


LABELLED = [
    ("I want you to act as a stand-up comedian", "roleplay"),
    ("Write a python function that checks for palindromes", "code"),
    ("who wrote the novel frankenstein", "knowledge"),
    ("hi there, how are you doing today?", "chitchat"),
    ("Summarize the following text in two sentences: The council met on Monday.", "summarize"),
    ("A shop sells pens at $2 each. How much do 7 pens cost?", "math"),
]


@pytest.fixture(scope="module")
def app_url(backend, tmp_path_factory):
    bench = tmp_path_factory.mktemp("bench")
    data = bench / "labelled.jsonl"
    data.write_text("".join(json.dumps({"query": q, "route": r}) + "\n" for q, r in LABELLED), encoding="utf-8")
    proc, url = launch(f"ollama.host={backend.url}", f"benchmarks.data={data}", f"benchmarks.data_dir={bench}",
                       f"benchmarks.out_dir={bench / 'runs'}",
                       f"benchmarks.calibrated_path={bench / 'calibrated.yaml'}")
    yield url
    stop(proc)


def text_of(message: dict) -> str:
    """A chat message's text: Gradio's client gives content as a string or as typed parts."""
    content = message["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def chat_turn(url: str, message: str) -> list[dict]:
    job = Client(url, verbose=False).submit(message, [], api_name="/chat")
    outputs = list(job)  # every streamed update
    assert len(outputs) > 2, "the answer should stream in several updates"
    chat, _box, _decision = job.outputs()[-1]
    return chat


def test_a_bad_override_is_one_line_without_traceback():
    out = subprocess.run([sys.executable, "app.py", "app.prot=7000"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and out.stderr.startswith("error: ") and "app.prot" in out.stderr
    assert "Traceback" not in out.stderr


def test_health_says_backend_and_models(app_url):
    health = httpx.get(f"{app_url}/healthz").json()
    assert health["backend"] == {"reachable": True, "detail": "", "models": {"llama3.2:3b": True, "tinyllama": True}}


def test_chat_turn_streams_the_answer_with_a_routing_card(app_url, backend):
    chat = chat_turn(app_url, "Write a python function that reverses a linked list")
    assert chat[0]["role"] == "user"
    final = text_of(chat[-1])
    assert final.startswith(REPLY)
    for part in ("tier **L1**", "route **code**", "expert **professor**", "`llama3.2:3b`", "first token", "tok/s", "total"):
        assert part in final, part
    sent = [r for r in backend.requests if r.path == "/api/chat"][-1].body
    assert sent["model"] == "llama3.2:3b" and sent["messages"][-1]["content"].startswith("Write a python")


def test_a_slow_backend_does_not_queue_other_sessions(app_url, backend):
    clients = [Client(app_url, verbose=False) for _ in range(3)]
    chats = lambda: sum(r.path == "/api/chat" for r in backend.requests)  # noqa: E731
    backend.configure(first_chunk_delay=2.0)
    try:
        before = chats()
        jobs = [c.submit(f"write a python function number {i}", [], api_name="/chat") for i, c in enumerate(clients)]
        while not any(job.done() for job in jobs):
            time.sleep(0.05)
        assert chats() - before == 3, "the other sessions' turns waited for the first one to finish"
        for job in jobs[1:]:
            assert "tok/s" in text_of(job.result()[0][-1])
    finally:
        backend.configure(first_chunk_delay=0.0)


def test_rest_route_matches_the_cli(app_url):
    query = "I want you to act as a travel guide for Lisbon"
    api = httpx.post(f"{app_url}/v1/route", json={"query": query}).json()
    cli = subprocess.run([sys.executable, "-m", "router", "route", query], cwd=ROOT, capture_output=True, text=True)
    expected = json.loads(cli.stdout)
    assert {k: v for k, v in api.items() if k != "timings"} == {k: v for k, v in expected.items() if k != "timings"}


def test_without_backend_the_card_and_a_plain_notice_appear():
    proc, url = launch(f"ollama.host=http://127.0.0.1:{unused_port()}", "ollama.connect_timeout=0.5")
    try:
        assert httpx.get(f"{url}/healthz").json()["backend"]["reachable"] is False
        chat, _box, _decision = Client(url, verbose=False).predict("what is the capital of peru", [], api_name="/chat")
        final = text_of(chat[-1])
        assert "No model answered" in final and "ollama serve" in final and "route **knowledge**" in final
    finally:
        stop(proc)


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed (apt-get install chromium)")
def test_browser_chat_shows_answer_and_card(app_url):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "chat.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(app_url)
            page.wait_for_selector("#chat-input textarea", timeout=60_000)
            page.wait_for_function(
                "document.querySelector('#backend-status').innerText.includes('Backend reachable')", timeout=30_000
            )
            page.fill("#chat-input textarea", "Write a python function that reverses a linked list")
            page.click("#send")
            page.wait_for_function(
                "(() => { const t = document.querySelector('#chatbot').innerText;"
                " return t.includes('tok/s') && t.includes('Routing'); })()",
                timeout=60_000,
            )
            page.screenshot(path=str(shot), full_page=True)
            text = page.inner_text("#chatbot")

            # "Should have gone to": the keyword rule that decided is overruled where L2 agrees.
            page.click("#correct-route input")
            page.get_by_role("option", name="math", exact=True).click()
            page.click("#correct-button")
            page.wait_for_function(
                "document.querySelector('#chat-feedback').innerText.includes('re-check')", timeout=30_000)
            corrected = page.inner_text("#chat-feedback")

            # Try the other expert: the Compare tab opens with both answers; pick one.
            page.click("#try-other")
            page.wait_for_function(
                "document.querySelector('#compare-side-b') && "
                "document.querySelector('#compare-side-b').innerText.includes('tok/s')", timeout=60_000)
            page.click("#vote-b")
            page.wait_for_function(
                "document.querySelector('#compare-saved').innerText.includes('Saved preference')", timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)
            compared = page.inner_text("#compare-side-b")

            page.get_by_role("tab", name="Data").click()
            page.click("#data-refresh")
            page.wait_for_function(
                "document.querySelector('#data-message').innerText.includes('1 preferences, 1 active')",
                timeout=30_000)
            page.wait_for_selector("#data-chart .js-plotly-plot", timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "data.png"), full_page=True)
            data = page.inner_text("#data-preferences")
            corrections = page.inner_text("#data-corrections")

            page.get_by_role("tab", name="Benchmarks").click()
            page.fill("#bench-grid textarea", "router=keyword,semantic,hybrid router.semantic.threshold=0.2,0.3")
            page.click("#bench-run")
            page.wait_for_function(
                "document.querySelector('#bench-summary').innerText.includes('configurations')", timeout=120_000)
            page.wait_for_selector("#bench-accuracy .js-plotly-plot", timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "benchmarks.png"), full_page=True)
            summary = page.inner_text("#bench-summary")
        finally:
            browser.close()
    assert REPLY[:40] in text and "route code" in text and "llama3.2:3b" in text
    assert shot.stat().st_size > 10_000
    assert "zoomer" in compared and "tinyllama" in compared
    assert "professor" in data and "zoomer" in data
    assert "Correction #1 saved" in corrected and "python" in corrected
    assert "math" in corrections and "python ?3?" in corrections
    assert "6 configurations" in summary and "Best:" in summary
