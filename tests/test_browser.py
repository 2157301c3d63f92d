"""The chat in real headless Chromium (Debian's chromium package) against a live server with the real model.

Slow: the language model loads once for the module; each answer takes seconds.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.api import create_app
from rag.assistant import Assistant
from rag.config import Settings

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
]
# A screenshot of the chat with the real model: RAG_SCREENSHOT=PATH.png pytest tests/test_browser.py
SCREENSHOT = Path(os.environ.get("RAG_SCREENSHOT", Path(tempfile.gettempdir()) / "rag-chat.png"))
XSS = (
    '<img src=x onerror="window.__xss=1"> Otter facts: sea otters <script>window.__xss=2</script> hold hands.'
)

if not Path(CHROMIUM).exists():
    pytest.skip("needs Debian's chromium package (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[str]:  # noqa: ANN001
    import uvicorn

    root = tmp_path_factory.mktemp("browser")
    cwd = pytest.MonkeyPatch()
    cwd.chdir(root)  # documents are then named docs/volcano.md, as in a real collection
    docs = root / "docs"
    docs.mkdir()
    (docs / "volcano.md").write_text(
        "# Volcanoes\n\nMount Erebus is the southernmost active volcano on Earth, in Antarctica. "
        "It holds one of the few long-lived lava lakes in the world.\n"
    )
    (docs / "bread.txt").write_text(
        "Sourdough bread rises because wild yeast and lactobacilli ferment the dough.\n"
    )
    (docs / "otters.txt").write_text(XSS + "\n")
    assistant = Assistant(
        Settings(index_dir=root / "index", upload_dir=root / "uploads", max_answer_tokens=60),
        embedder=embedder,
    )
    assistant.ingest([docs])
    assistant.generator  # noqa: B018  (load before the first question, as `rag serve` does)
    port = free_port()
    config = uvicorn.Config(create_app(assistant), host="127.0.0.1", port=port, log_level="warning")
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uvicorn_server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    uvicorn_server.should_exit = True
    thread.join(10)
    cwd.undo()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser, server: str):  # noqa: ANN001, ANN201
    context = browser.new_context(viewport={"width": 1000, "height": 800}, base_url=server)
    page = context.new_page()
    page.set_default_timeout(90_000)
    yield page
    context.close()


def ask(page, question: str) -> None:  # noqa: ANN001
    page.get_by_label("Question").fill(question)
    page.keyboard.press("Enter")
    page.locator(".turn").last.locator(".status").filter(has_text="Answered").wait_for()


def test_ask_streams_an_answer_and_opens_the_cited_passage(page) -> None:  # noqa: ANN001
    page.goto("/")
    page.evaluate(
        """() => { window.__updates = 0; new MutationObserver(() => window.__updates++)
               .observe(document.getElementById('conversation'), {subtree: true, childList: true,
                                                                   characterData: true}); }"""
    )
    ask(page, "Which volcano is the southernmost active volcano on Earth?")
    turn = page.locator(".turn").last
    assert "Erebus" in turn.locator(".answer").inner_text()
    assert page.evaluate("window.__updates") > 3, "the answer arrived in pieces, not all at once"
    cite = turn.locator(".answer button.cite").first
    cite.wait_for()
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    cite.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("dialog#viewer")
    dialog.locator("mark").wait_for()
    assert "Erebus" in dialog.locator("mark").inner_text()
    assert dialog.locator("#viewer-title").inner_text() == "Volcanoes"
    assert "volcano.md" in dialog.locator("#viewer-where").inner_text()
    page.keyboard.press("Escape")
    assert not dialog.is_visible()


def test_follow_up_and_new_conversation(page) -> None:  # noqa: ANN001
    page.goto("/")
    ask(page, "Which volcano is the southernmost active volcano on Earth?")
    with page.expect_request("**/api/answer/stream") as request:
        ask(page, "What does it hold?")
    assert request.value.post_data_json["conversation_id"], "the server continues the stored conversation"
    assert page.locator(".turn").count() == 2
    assert "lava" in page.locator(".turn .answer").last.inner_text().lower()
    page.get_by_role("button", name="New conversation").click()
    assert page.locator(".turn").count() == 0
    page.locator("#conversation-list button").first.click()  # stored: it opens again
    page.locator(".turn").nth(1).wait_for()
    assert "lava" in page.locator(".turn .answer").last.inner_text().lower()


def test_upload_a_document_then_ask_about_it(page, tmp_path: Path) -> None:  # noqa: ANN001
    upload = tmp_path / "widgets.md"
    upload.write_text("# Zorblax widgets\n\nZorblax widgets are always painted teal before they ship.\n")
    bad = tmp_path / "virus.exe"
    bad.write_bytes(b"MZ")
    page.goto("/documents")
    page.get_by_label("Files").set_input_files([str(upload), str(bad)])
    page.get_by_role("button", name="Upload").click()
    page.locator("#upload-status").filter(has_text="Done").wait_for()
    results = page.locator("#upload-files").inner_text()
    assert "widgets.md: indexed" in results and "virus.exe: rejected" in results and "unsupported" in results
    page.locator("#documents tbody tr").filter(has_text="Zorblax widgets").wait_for()

    page.goto("/")
    ask(page, "What colour are Zorblax widgets painted?")
    assert "teal" in page.locator(".turn .answer").last.inner_text().lower()


def test_document_text_with_html_is_shown_as_text(page) -> None:  # noqa: ANN001
    page.goto("/documents")
    page.locator("#documents tbody tr").first.wait_for()
    page.goto("/")
    ask(page, "What do sea otters hold?")
    page.locator(".turn .sources li").first.wait_for()
    sources = page.locator(".turn .sources").inner_text()
    assert "<script>window.__xss=2</script>" in sources and "<img src=x" in sources
    assert page.locator("#conversation img, #conversation script").count() == 0
    assert page.evaluate("window.__xss") is None


def test_abstention_and_phone_width(browser, server: str) -> None:  # noqa: ANN001
    context = browser.new_context(viewport={"width": 375, "height": 740}, base_url=server)
    page = context.new_page()
    page.set_default_timeout(90_000)
    page.goto("/")
    ask(page, "What is the population of Ulaanbaatar in 1990?")
    turn = page.locator(".turn").last
    assert "Not in the documents" in turn.locator(".answer").inner_text()
    assert turn.locator("h3").inner_text() == "Nearest passages" and turn.locator(".sources li").count() >= 1
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    context.close()


def test_unsupported_sentences_are_marked(page) -> None:  # noqa: ANN001
    """The chat's rendering of the `sentences` field (per-sentence support from the grounding check)."""
    page.goto("/")
    page.evaluate(
        """() => renderAnswer(newTurn("q"), {
            answer: "Erebus is in Antarctica [1]. It is made of cheese [1].", abstained: false,
            citations: [{n: 1, document: "docs/volcano.md", title: "Volcanoes", page: null, start: 0, end: 10,
                         quote: "Mount Erebus", score: 0.9}],
            sentences: [{text: "Erebus is in Antarctica [1].", citations: [1], supported: true, support: 0.9},
              {text: "It is made of <b>cheese</b>.", citations: [1], supported: false, support: 0.1,
               issues: ["'cheese' is not in the cited passages"]}],
            timings: {total_seconds: 1.0}, passages: []})"""
    )
    answer = page.locator(".turn .answer")
    unsupported = answer.locator(".sentence.unsupported")
    assert unsupported.count() == 1 and "cheese" in unsupported.inner_text()
    assert "unsupported" in unsupported.locator(".flag").inner_text()
    assert "<b>cheese</b>" in unsupported.inner_text(), "sentence text is shown as text"
    assert "'cheese' is not in the cited passages" in unsupported.get_attribute("title"), "issues are shown"
    assert answer.locator(".sentence.supported button.cite").count() == 1
    assert unsupported.locator("button.cite").count() == 1, "citations listed but not in the text are added"


def test_grouped_citations_become_one_button_per_number(page) -> None:  # noqa: ANN001
    """`[1, 2]` and `[1; 2]`, which the model also writes, open their passages like `[1][2]` does."""
    page.goto("/")
    page.evaluate(
        """() => renderAnswer(newTurn("q"), {
            answer: "Erebus is in Antarctica [1, 2]. It erupts [1; 2][3].", abstained: false,
            citations: [1, 2].map((n) => ({n, document: "docs/volcano.md", title: "Volcanoes", page: null,
                                          start: 0, end: 10, quote: "Mount Erebus", score: 0.9})),
            sentences: [{text: "Erebus is in Antarctica [1, 2].", citations: [1, 2], supported: true},
              {text: "It erupts [1; 2][3].", citations: [1, 2], supported: true}],
            timings: {total_seconds: 1.0}, passages: []})"""
    )
    answer = page.locator(".turn .answer")
    buttons = answer.locator("button.cite")
    assert buttons.all_inner_texts() == ["[1]", "[2]", "[1]", "[2]", "[3]"]
    assert "[1, 2]" not in answer.inner_text() and "[1; 2]" not in answer.inner_text()
    assert buttons.nth(0).is_enabled() and buttons.nth(4).is_disabled(), "[3] names no given passage"


def test_api_docs_render_offline(page) -> None:  # noqa: ANN001
    page.goto("/docs")
    page.locator(".swagger-ui .opblock").first.wait_for()
    assert page.locator(".swagger-ui .opblock").count() >= 9
