"""The whole path with the real packaged models: ingest a small corpus, ask, check the citations."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.assistant import Assistant
from rag.config import Settings

pytestmark = pytest.mark.slow

FACTS = {
    "harbour.md": "# Port Vell harbour\n\nThe Port Vell harbour opened its new ferry terminal in 1994. "
    "The terminal has eleven berths.\n\n## Lighthouse\n\n"
    "The harbour lighthouse is painted green and white.\n",
    "orchard.txt": "The Maple Hill orchard grows forty varieties of apple. "
    "Its oldest tree was planted in 1871 by Eliza Thornbury.\n",
    "observatory.html": "<html><head><title>Kestrel Observatory</title></head><body>"
    "<h1>Kestrel Observatory</h1><p>The Kestrel Observatory telescope has a mirror 3.6 metres wide.</p>"
    "<p>It stands at 2,400 metres "
    "above sea level.</p></body></html>",
}


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory, embedder) -> Assistant:
    root = tmp_path_factory.mktemp("integration")
    docs = root / "docs"
    docs.mkdir()
    for name, text in FACTS.items():
        (docs / name).write_text(text)
    assistant = Assistant(Settings(index_dir=root / "index", max_answer_tokens=80), embedder=embedder)
    report = assistant.ingest([docs])
    assert len(report.added) == 3
    return assistant


@pytest.mark.parametrize(
    ("question", "answer", "document"),
    [
        ("Who planted the oldest tree of the Maple Hill orchard?", "Thornbury", "orchard.txt"),
        ("How wide is the mirror of the Kestrel Observatory telescope?", "3.6", "observatory.html"),
    ],
)
def test_answer_cites_the_chunk_that_holds_it(
    assistant: Assistant, question: str, answer: str, document: str
):
    result = assistant.ask(question, k=3)
    assert not result.abstained, result.text
    assert answer in result.text
    assert result.citations, f"no citation in {result.text!r}"
    cited = [c for c in result.citations if Path(c.document).name == document]
    assert cited, f"cited {[c.document for c in result.citations]}, expected {document}"
    source = assistant.document(cited[0].document)
    assert source.text[cited[0].start : cited[0].end] == cited[0].quote
    assert answer in cited[0].quote
    assert result.timings["first_token_seconds"] <= result.timings["total_seconds"]


def test_unrelated_question_abstains(assistant: Assistant) -> None:
    result = assistant.ask("What is the best recipe for chocolate cake?", k=3)
    assert result.abstained
    assert not result.citations


def test_streaming_yields_tokens_then_the_answer(assistant: Assistant) -> None:
    stream = assistant.ask_stream("What colours is the harbour lighthouse painted?", k=3)
    tokens = list(stream)
    assert tokens and "".join(tokens).strip() == stream.answer.text
    assert "green" in stream.answer.text.lower()


def test_warm_up_leaves_the_prompts_instructions_evaluated(assistant: Assistant) -> None:
    """What `rag serve` runs before its first question: the question runtime loaded, and on llama.cpp the
    instructions every prompt starts with already in the model's cache, so a question evaluates only the
    rest of its prompt."""
    import llama_cpp

    from rag.generation.llama_cpp import LlamaCppGenerator

    generator = assistant.generator
    if not isinstance(generator, LlamaCppGenerator):
        pytest.skip("llama.cpp's cache")
    generator._llama.n_tokens = 0
    assistant.warm_up()
    held = generator._llama.n_tokens
    assert held > 200  # the instructions and the demonstration
    context = generator._llama._ctx.ctx
    before = llama_cpp.llama_perf_context(context).n_p_eval
    result = assistant.ask("Who planted the oldest tree of the Maple Hill orchard?", k=3)
    assert "Thornbury" in result.text
    evaluated = llama_cpp.llama_perf_context(context).n_p_eval - before
    prompt = int(result.timings["prompt_tokens"])
    # The rest of the prompt, the refusal probe's and the judge's few tokens: never the instructions again.
    assert evaluated <= prompt - held + 120, (evaluated, prompt, held)
