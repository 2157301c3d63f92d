"""The chat's features in real headless Chromium (Debian's chromium) against one live server: stored
conversations, the answer's steps and Stop, Markdown rendered safely, the source viewer (pdf.js), options,
multi-line questions, and accessibility (axe-core, vendored in tests/vendor).

The UI is what these tests are about, so the embedder, model and support checker are the fakes
(tests/fakes.py and `KeywordReplies` here); tests/test_browser.py drives the real model.
Screenshots: RAG_SCREENSHOTS=docs pytest tests/test_browser_chat.py rewrites the README's.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fakes import BagOfWordsEmbedder, KeywordChecker
from test_browser import CHROMIUM, CHROMIUM_ARGS, free_port

from rag.api import create_app
from rag.assistant import Assistant
from rag.config import Settings
from rag.generation import GenerationStats, GenerationStream
from rag.grounding import NO_ANSWER

pytestmark = pytest.mark.slow

sync_api = pytest.importorskip("playwright.sync_api")
SHOTS = Path(os.environ.get("RAG_SCREENSHOTS", tempfile.gettempdir())).resolve()
AXE = Path(__file__).parent / "vendor" / "axe.min.js"

MARKDOWN_REPLY = """## Honey, briefly

Bees make honey from flower nectar [1]. Honey keeps **for years** [1].

| Product | Made by |
|---|---|
| honey | bees [1] |

```python
print("honey keeps for years")
```

<img src=x onerror="window.__xss=3"> [a link](javascript:window.__xss=4)"""

REPLIES = {
    "hold": "Erebus holds a lava lake [1].",
    "honey": MARKDOWN_REPLY,
    "lava": "The lava of Erebus flows slowly into a lake [1].",
    "volcano": "Erebus is a volcano in Antarctica [1].",
    "ice": " ".join(["Ice"] + ["melts slowly"] * 200) + " [1].",
    "bread": "Bread rises because yeast ferments the dough [1].",
}


class KeywordReplies:
    """A generator that answers by a keyword of the question (`REPLIES`), word by word with a pause, so the
    chat's steps and Stop can be seen; a follow-up's rewrite keeps the question as it is."""

    name = "keyword-replies"

    def __init__(self, pause: float = 0.01) -> None:
        self.pause = pause
        self.stopped = 0

    def stream(
        self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float = 0.0
    ) -> GenerationStream:
        last = messages[-1]["content"]
        if "Last question:" in last:  # the follow-up rewrite
            words = last.rsplit("Last question:", 1)[1].split()
        else:
            question = last.rsplit("Question:", 1)[-1].lower()
            reply = next((text for word, text in REPLIES.items() if word in question), NO_ANSWER)
            words = reply.split(" ")
        pause = self.pause * (5 if words[0] == "Ice" else 1)

        def pieces() -> Iterator[str]:
            try:
                for n, word in enumerate(words[:max_tokens]):
                    time.sleep(pause)
                    yield word if n == 0 else " " + word
            except GeneratorExit:
                self.stopped += 1
                raise

        return GenerationStream(pieces(), GenerationStats(prompt_tokens=10))

    def count_tokens(self, text: str) -> int:
        return len(text.split())


def make_pdf(path: Path) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_creation_date(datetime(2026, 1, 1, tzinfo=timezone.utc))
    pdf.set_title("Lava lakes")
    pdf.set_font("Helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "Field notes, continued overleaf.")
    pdf.add_page()
    pdf.multi_cell(
        0,
        8,
        "The lava of Erebus flows slowly into a lake of molten rock. The lake has lasted for decades, "
        "one of the few long-lived lava lakes on Earth, and scientists watch it from the crater rim.",
    )
    pdf.output(str(path))
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, KeywordReplies]]:
    import uvicorn

    root = tmp_path_factory.mktemp("chat")
    cwd = pytest.MonkeyPatch()
    cwd.chdir(root)  # documents are then named docs/volcano.md, as in a real collection
    docs = root / "docs"
    docs.mkdir()
    (docs / "volcano.md").write_text(
        "# Volcanoes\n\nErebus is a volcano in Antarctica. Erebus holds a lava lake.\n"
    )
    (docs / "honey.txt").write_text(
        'Bees make honey from flower nectar. <img src=x onerror="window.__xss=1"> '
        "<script>window.__xss=2</script> Honey keeps for years, made by bees.\n"
    )
    (docs / "ice.md").write_text("# Ice\n\nIce melts slowly in the cold.\n")
    make_pdf(docs / "lava.pdf")
    generator = KeywordReplies()
    assistant = Assistant(
        Settings(
            index_dir=root / "index",
            upload_dir=root / "uploads",
            min_relevance=-1.0,
            chunk_tokens=120,
            chunk_overlap=0,
            max_answer_tokens=500,
        ),
        embedder=BagOfWordsEmbedder(),
        generator=generator,  # type: ignore[arg-type]
        support_checker=KeywordChecker(),
    )
    assistant.ingest([docs])
    kitchen = root / "kitchen-docs"
    kitchen.mkdir()
    (kitchen / "bread.txt").write_text("Bread rises because yeast ferments the dough.\n")
    Assistant(
        assistant.settings.model_copy(update={"index_dir": root / "kitchen"}), embedder=BagOfWordsEmbedder()
    ).ingest([kitchen])
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(assistant), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", generator
    server.should_exit = True
    thread.join(10)
    cwd.undo()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture()
def context(browser, served):  # noqa: ANN001, ANN201
    server, _ = served
    context = browser.new_context(viewport={"width": 1200, "height": 860}, base_url=server)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    context.set_default_timeout(20_000)
    yield context
    context.close()


@pytest.fixture()
def page(context):  # noqa: ANN001, ANN201
    page = context.new_page()
    page.goto("/")
    return page


def ask(page, question: str, done: str = "Answered") -> object:  # noqa: ANN001
    page.get_by_label("Question").fill(question)
    page.keyboard.press("Enter")
    turn = page.locator(".turn").last
    turn.locator(".status").filter(has_text=done).wait_for()
    return turn


def api(server: str, path: str) -> object:
    with urllib.request.urlopen(server + path) as response:  # noqa: S310  (a local test server)
        return json.loads(response.read())


def serious_violations(page) -> list[str]:  # noqa: ANN001
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_conversations_are_listed_restored_renamed_exported_and_deleted(page, served) -> None:  # noqa: ANN001
    server, _ = served
    first = ask(page, "Which volcano is in Antarctica?")
    assert "Erebus is a volcano" in first.locator(".answer").inner_text()
    with page.expect_request("**/api/answer/stream") as request:
        ask(page, "What does the volcano hold?")
    body = request.value.post_data_json
    assert body["conversation_id"] and "history" not in body, "the server keeps the history"
    sidebar = page.locator("#conversation-list")
    current = sidebar.locator("button[aria-current=true]")
    assert current.inner_text() == "Which volcano is in Antarctica?"
    stored = api(server, f"/api/conversations/{body['conversation_id']}")
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant"] * 2
    page.screenshot(path=str(SHOTS / "chat-conversations.png"))

    page.reload()
    page.locator(".turn").nth(1).locator(".answer").filter(has_text="lava lake").wait_for()
    assert page.locator(".turn").count() == 2, "a reload restores the open conversation"
    assert page.locator(".turn .sources li").count() == 2 and page.locator(".turn button.cite").count() >= 2
    assert page.locator(".turn .sources .heading-path").first.inner_text() == "Volcanoes", "heading apart"

    page.get_by_role("button", name="Rename").click()
    page.get_by_label("New title").fill("Erebus questions")
    page.get_by_role("button", name="Save").click()
    current.filter(has_text="Erebus questions").wait_for()
    assert page.locator("#conversation-title").inner_text() == "Erebus questions"

    with page.expect_download() as download:
        page.get_by_role("button", name="Export Markdown").click()
    exported = Path(download.value.path()).read_text()
    assert exported.startswith("# Erebus questions") and "## What does the volcano hold?" in exported
    assert "Erebus holds a lava lake [1]." in exported

    page.get_by_role("button", name="New conversation").click()
    assert page.locator(".turn").count() == 0 and "c=" not in page.url
    page.locator("#conversation-list button", has_text="Erebus questions").click()
    page.locator(".turn").nth(1).wait_for()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    page.locator("#conversation-list button", has_text="Erebus questions").wait_for(state="detached")
    assert page.locator(".turn").count() == 0
    assert all(c["title"] != "Erebus questions" for c in api(server, "/api/conversations"))


def test_steps_show_while_it_happens_and_stop_frees_the_model(context, served) -> None:  # noqa: ANN001
    server, generator = served
    page = context.new_page()
    page.goto("/")
    page.get_by_label("Question").fill("How does ice melt?")
    page.keyboard.press("Enter")
    turn = page.locator(".turn").last
    steps = turn.locator(".steps li")
    steps.filter(has_text="Writing the answer").wait_for()
    labels = steps.all_inner_texts()
    assert labels[:2] == ["Sending the question", "Searching the documents"] and labels[2].startswith(
        "Reading "
    )
    elapsed = turn.locator(".elapsed")
    before = float(elapsed.inner_text().split()[0])
    time.sleep(0.4)
    assert float(elapsed.inner_text().split()[0]) > before, "the elapsed timer runs"
    turn.locator(".answer").filter(has_text="melts slowly").wait_for()

    other = context.new_page()
    other.goto("/")
    other.get_by_label("Question").fill("Which volcano is in Antarctica?")
    other.keyboard.press("Enter")
    other.locator(".steps li", has_text="Waiting for the model: 1 answer ahead").wait_for()
    page.screenshot(path=str(SHOTS / "chat-steps.png"))

    stopped_before = generator.stopped
    page.get_by_role("button", name="Stop").click()
    turn.locator(".status").filter(has_text="Stopped after").wait_for()
    assert turn.locator(".steps li.stopped").count() == 1
    assert page.get_by_role("button", name="Ask").is_visible()
    other.locator(".turn .status").filter(has_text="Answered").wait_for()  # the model was freed for it
    assert generator.stopped == stopped_before + 1, "the generation itself was stopped"
    assert api(server, "/api/health")["queue"]["admitted"] == 0
    cid = re.search(r"c=(\w+)", page.url).group(1)
    assert api(server, f"/api/conversations/{cid}")["messages"][1]["stopped"] is True


def test_markdown_is_rendered_and_html_stays_inert(page) -> None:  # noqa: ANN001
    turn = ask(page, "How do bees make honey?")
    answer = turn.locator(".answer")
    assert answer.locator("h2").inner_text() == "Honey, briefly"
    assert answer.locator("table th").all_inner_texts() == ["Product", "Made by"]
    assert answer.locator("strong").inner_text() == "for years" and answer.locator("pre code").count() == 1
    assert answer.locator("button.cite").count() >= 2, "citations in paragraphs and tables are buttons"
    assert "##" not in answer.inner_text() and "```" not in answer.inner_text()
    flag = answer.locator("p .flag")
    assert flag.count() == 1 and "Not supported" in flag.get_attribute("title")
    assert "for years ⚠ unsupported" in answer.locator("p").first.inner_text(), "flagged where it ends"
    assert '<img src=x onerror="window.__xss=3">' in answer.inner_text(), "raw HTML is shown as text"
    assert answer.locator("a").count() == 0 or all(
        not (a or "").startswith("javascript")
        for a in answer.locator("a").evaluate_all("as => as.map(a => a.href)")
    )
    sources = turn.locator(".sources")
    assert "<script>window.__xss=2</script>" in sources.inner_text()
    assert page.locator("#conversation img, #conversation script").count() == 0
    assert page.evaluate("window.__xss") is None

    answer.locator(".code-block button", has_text="Copy code").click()
    assert page.evaluate("navigator.clipboard.readText()") == 'print("honey keeps for years")\n'
    turn.get_by_role("button", name="Copy answer").click()
    assert page.evaluate("navigator.clipboard.readText()") == MARKDOWN_REPLY
    page.screenshot(path=str(SHOTS / "chat-markdown.png"), full_page=True)

    # The answer's assessment (confidence, a recovered refusal, limitations), as text beside and below it
    page.evaluate(
        """() => renderAnswer(newTurn("Recovered?"), {answer: "Bees make honey [1].", citations: [],
            abstained: false, timings: {total_seconds: 1.5}, confidence: 0.874, recovered: true,
            limitations: ['<img src=x onerror="window.__xss=4">', "The passage is from 2019"]})"""
    )
    assessed = page.locator(".turn").last
    label = assessed.locator(".status .confidence")
    assert label.inner_text() == "Confidence 87 %" and "calibrated probability" in label.get_attribute(
        "title"
    )
    assert assessed.locator(".status").inner_text() == "Answered in 1.5 s · Confidence 87 %"
    assert (
        assessed.locator(".recovered").inner_text() == "Recovered from a refusal: answered from the passage"
    )
    assert (
        '<img src=x onerror="window.__xss=4">; The passage is from 2019'
        in assessed.locator(".limitations").inner_text()
    )
    assert page.evaluate("window.__xss") is None and page.locator("#conversation img").count() == 0
    assert serious_violations(page) == [], "the answer's assessment"


def test_a_pdf_citation_opens_its_page_with_the_span_highlighted(page, served) -> None:  # noqa: ANN001
    server, _ = served
    turn = ask(page, "Where does the lava flow?")
    citation = turn.locator(".answer button.cite").first
    assert "pages 1–2 (quote on page 2)" in turn.locator(".sources .where").first.inner_text()
    citation.click()
    dialog = page.locator("dialog#viewer")
    highlighted = dialog.locator(".pdf-page .textLayer .cited")
    highlighted.first.wait_for()
    assert dialog.locator(".pdf-page").count() == 2 and dialog.locator("canvas").count() == 2
    pages_with_marks = dialog.locator(".pdf-page").evaluate_all(
        "figs => figs.map(f => f.querySelectorAll('.cited').length)"
    )
    assert pages_with_marks[1] > 0, "the quote is highlighted on page 2, where its text is"
    assert "lava" in " ".join(highlighted.all_text_contents()).lower()
    assert "pages 1–2 (quote on page 2)" in dialog.locator("#viewer-where").inner_text()
    href = dialog.get_by_role("link", name="Download the original").get_attribute("href")
    with urllib.request.urlopen(server + href) as response:  # noqa: S310
        assert response.read(5) == b"%PDF-"
    page.screenshot(path=str(SHOTS / "chat-pdf-source.png"))
    assert serious_violations(page) == []


def test_other_formats_show_the_text_with_the_span_marked(page) -> None:  # noqa: ANN001
    turn = ask(page, "Which volcano is in Antarctica?")
    turn.locator(".sources button.link").first.click()
    dialog = page.locator("dialog#viewer")
    dialog.locator("#viewer-text mark").wait_for()
    assert "Erebus is a volcano" in dialog.locator("mark").inner_text()
    assert dialog.locator(".pdf-page").count() == 0
    with page.expect_download() as download:
        dialog.get_by_role("link", name="Download the original").click()
    assert Path(download.value.path()).read_text().startswith("# Volcanoes")
    page.keyboard.press("Escape")


def test_options_travel_with_the_question_and_multi_line_questions(page) -> None:  # noqa: ANN001
    page.get_by_text("Options").click()
    page.get_by_label("Passages to read").fill("2")
    page.get_by_label("Search by").select_option("dense")
    page.get_by_label("Unsupported sentences").select_option("strict")
    assert serious_violations(page) == [], "the open options popover"
    question = page.get_by_label("Question")
    question.fill("Which volcano")
    question.press("Shift+Enter")
    question.type("is in Antarctica?")
    assert page.locator(".turn").count() == 0, "Shift+Enter adds a line, it does not send"
    with page.expect_request("**/api/answer/stream") as request:
        question.press("Enter")
    body = request.value.post_data_json
    assert body["question"] == "Which volcano\nis in Antarctica?"
    assert (body["k"], body["retrieval_mode"], body["grounding_mode"]) == (2, "dense", "strict")
    turn = page.locator(".turn").last
    turn.locator(".status").filter(has_text="Answered").wait_for()
    assert turn.locator(".question").inner_text() == "Which volcano\nis in Antarctica?"
    assert "Reading 2 passages" in turn.locator(".steps").text_content()
    page.reload()
    assert page.get_by_label("Passages to read").input_value() == "2", "options are kept"
    page.evaluate("localStorage.clear()")


def test_accessibility_and_phone_width(browser, served) -> None:  # noqa: ANN001
    server, _ = served
    context = browser.new_context(viewport={"width": 375, "height": 740}, base_url=server)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto("/")
    ask(page, "How do bees make honey?")
    assert serious_violations(page) == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.goto("/documents")
    page.locator("#documents tbody tr").first.wait_for()
    assert serious_violations(page) == []
    context.close()


def test_the_documents_page_and_the_chat_choose_one_collection(page) -> None:  # noqa: ANN001
    page.goto("/documents")
    page.locator("#documents tbody tr").first.wait_for()
    assert page.locator("#documents tbody tr", has_text="bread").count() == 0
    page.get_by_label("Collection").fill("kitchen")
    page.get_by_label("Collection").press("Enter")
    page.locator("#documents tbody tr", has_text="bread").wait_for()
    assert page.locator("#documents tbody tr").count() == 1
    page.goto("/")
    page.get_by_text("Options").click()
    assert page.get_by_label("Collection").input_value() == "kitchen", "the chat asks the chosen collection"
    page.get_by_text("Options").click()
    with page.expect_request("**/api/answer/stream") as request:
        turn = ask(page, "Why does bread rise?")
    assert request.value.post_data_json["collection"] == "kitchen"
    assert "yeast" in turn.locator(".answer").inner_text()
    turn.locator(".sources button.link").first.click()
    page.locator("dialog#viewer mark").filter(has_text="yeast ferments").wait_for()
    page.keyboard.press("Escape")
    page.evaluate("localStorage.clear()")


ATTACKER_PAGE = """<!doctype html><title>Another site</title><script>
async function attack(rag, conversationId) {
  const attempt = (label, run) => run().then(() => label + ": sent", (e) => label + ": " + e.name);
  const upload = new FormData();
  upload.append("files", new Blob(["# Planted\\n\\nZorblax planted by another site."]), "planted.md");
  return Promise.all([
    attempt("upload", () => fetch(rag + "/api/documents", {method: "POST", mode: "no-cors", body: upload})),
    attempt("create", () => fetch(rag + "/api/conversations", {method: "POST", mode: "no-cors",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify({title: "Planted"})})),
    attempt("delete document", () => fetch(rag + "/api/documents/docs/volcano.md", {method: "DELETE"})),
    attempt("delete conversation", () =>
      fetch(rag + "/api/conversations/" + conversationId, {method: "DELETE", credentials: "include"})),
  ]);
}
</script>"""


def refusal(request, sent_headers: dict[str, str]) -> str:  # noqa: ANN001
    """The error type the server answers to a replay of a request with the headers Chromium sent."""
    headers = {
        k: v for k, v in sent_headers.items() if k.lower() not in ("host", "content-length", "connection")
    }
    replay = urllib.request.Request(
        request.url, data=request.post_data_buffer, headers=headers, method=request.method
    )
    try:
        urllib.request.urlopen(replay).close()  # noqa: S310  (a local test server)
    except urllib.error.HTTPError as error:
        return f"{error.code} {json.loads(error.read())['error']['type']}"
    return "accepted"


@pytest.fixture()
def attacker_site() -> Iterator[str]:
    """A plain HTTP server on another port of 127.0.0.1 (so another origin) serving `ATTACKER_PAGE`."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802  (the handler's required name)
            body = ATTACKER_PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    site = ThreadingHTTPServer(("127.0.0.1", free_port()), Page)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{site.server_address[1]}"
    site.shutdown()
    site.server_close()
    thread.join(10)


def test_another_sites_page_cannot_upload_create_or_delete(
    browser,  # noqa: ANN001
    served,  # noqa: ANN001
    attacker_site: str,
    tmp_path: Path,
) -> None:
    """CSRF: another origin's page tries what an attacker's would; the chat's own page still uploads."""
    server, _ = served
    created = urllib.request.Request(server + "/api/conversations", data=b'{"title": "Kept"}', method="POST")
    created.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(created) as response:  # noqa: S310  (not a browser: allowed)
        conversation_id = json.loads(response.read())["id"]
    documents_before = api(server, "/api/documents")
    conversations_before = api(server, "/api/conversations")

    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    replies: list = []
    page.on(
        "response", lambda response: replies.append(response) if response.url.startswith(server) else None
    )
    # The headers as sent on the wire (Origin, Sec-Fetch-Site), which Playwright's request does not show
    sent: dict[str, dict[str, str]] = {}
    urls: dict[str, str] = {}
    cdp = context.new_cdp_session(page)
    cdp.on("Network.requestWillBeSent", lambda e: urls.__setitem__(e["requestId"], e["request"]["url"]))
    cdp.on("Network.requestWillBeSentExtraInfo", lambda e: sent.__setitem__(e["requestId"], e["headers"]))
    cdp.send("Network.enable")
    page.goto(attacker_site)
    outcomes = page.evaluate("([rag, id]) => attack(rag, id)", [server, conversation_id])
    page.wait_for_timeout(500)  # let the last response events arrive
    # Chromium drops an opaque reply's JSON body (ORB), so the status is read here and the error type by
    # replaying the exact requests Chromium sent, its Origin and Sec-Fetch-Site headers included.
    wire = {urls[key]: headers for key, headers in sent.items() if key in urls}
    assert all(wire[r.url]["Origin"] == attacker_site for r in replies), "another port: another origin"
    posts = [(r.request.method, r.url, r.status, refusal(r.request, wire[r.url])) for r in replies]
    context.close()

    assert outcomes[:2] == ["upload: sent", "create: sent"], "no-cors POSTs leave the page (opaque replies)"
    assert all(not outcome.endswith("sent") for outcome in outcomes[2:]), "DELETE needs a preflight"
    assert sorted(posts) == [
        ("POST", server + "/api/conversations", 403, "403 CrossSiteRequest"),
        ("POST", server + "/api/documents", 403, "403 CrossSiteRequest"),
    ], "the refusals, as the browser received them"
    assert api(server, "/api/documents") == documents_before, "nothing indexed or deleted"
    assert api(server, "/api/conversations") == conversations_before, "nothing created or deleted"
    assert "planted.md" not in json.dumps(api(server, "/api/jobs")), "no upload job either"

    # The control: the chat's own page (same origin) still uploads.
    own = browser.new_context(base_url=server)
    page = own.new_page()
    page.set_default_timeout(20_000)
    upload = tmp_path / "own-upload.md"
    upload.write_text("# Own upload\n\nUploaded from the chat's own documents page.\n")
    page.goto("/documents")
    page.get_by_label("Files").set_input_files([str(upload)])
    page.get_by_role("button", name="Upload").click()
    page.locator("#upload-status").filter(has_text="Done").wait_for()
    own.close()
    added = [d for d in api(server, "/api/documents") if d not in documents_before]
    assert [d["title"] for d in added] == ["Own upload"]

    for path in (f"/api/documents/{added[0]['id']}", f"/api/conversations/{conversation_id}"):
        cleanup = urllib.request.Request(server + path, method="DELETE")
        urllib.request.urlopen(cleanup).close()  # noqa: S310
