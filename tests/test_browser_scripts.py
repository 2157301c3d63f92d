"""The chat's scripts, read as text (fast, no browser): text from documents or the model becomes HTML in
exactly one place, `sanitizedFragment` in markdown.js, which returns DOMPurify's DOM fragment; every other
line only sets textContent. tests/test_browser_chat.py checks in Chromium that payloads stay inert."""

from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).parent.parent / "web" / "static"
OWN_SCRIPTS = sorted(STATIC.glob("*.js"))


def test_no_script_writes_html_outside_the_sanitiser() -> None:
    assert {p.name for p in OWN_SCRIPTS} >= {
        "chat.js",
        "common.js",
        "documents.js",
        "markdown.js",
        "viewer.js",
    }
    for script in OWN_SCRIPTS:
        text = script.read_text()
        for sink in (
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "createContextualFragment",
        ):
            assert sink not in text, f"{script.name} uses {sink}"


def test_the_one_html_sink_is_dompurify_returning_a_fragment() -> None:
    sanitize_calls = {p.name: len(re.findall(r"DOMPurify\.sanitize\(", p.read_text())) for p in OWN_SCRIPTS}
    assert {name: n for name, n in sanitize_calls.items() if n} == {"markdown.js": 1}
    markdown = (STATIC / "markdown.js").read_text()
    sink = markdown[markdown.index("function sanitizedFragment") :]
    sink = sink[: sink.index("\n}\n")]
    assert "RETURN_DOM_FRAGMENT: true" in sink and "ALLOWED_TAGS: MARKDOWN_TAGS" in sink
    assert not {"script", "img", "iframe", "style", "svg"} & set(
        re.findall(r'"(\w+)"', markdown.split("];")[0])
    )
    marked_uses = [
        p.name for p in OWN_SCRIPTS if re.search(r"\bmarked\.(parse|parseInline)\(", p.read_text())
    ]
    assert marked_uses == ["markdown.js"], "Markdown becomes HTML only on the way into the sanitiser"
    assert "escapeHtml(token.raw" in markdown, "raw HTML in Markdown is shown as text"


def test_vendored_libraries_carry_their_licenses() -> None:
    vendor = STATIC / "vendor"
    for library, license_file in [
        ("marked.umd.js", "marked.LICENSE"),
        ("purify.min.js", "dompurify.LICENSE"),
        ("pdf.min.mjs", "pdfjs.LICENSE"),
        ("pdf.worker.min.mjs", "pdfjs.LICENSE"),
    ]:
        assert (vendor / library).stat().st_size > 10_000 and (vendor / license_file).is_file()
    assert (Path(__file__).parent / "vendor" / "axe-core.LICENSE").is_file()
