"""Evidence compression with fakes (fast): the question's sentences kept within the budget, exact
document offsets, every passage kept, and the ask path sending the model the compressed passages."""

from __future__ import annotations

from pathlib import Path

from fakes import BagOfWordsEmbedder, KeywordChecker, ScriptedGenerator

from rag.assistant import Assistant
from rag.compression import compress_passages, term_overlap
from rag.config import Settings
from rag.types import Chunk, Passage

DOCUMENT = (
    "Intro words that say nothing much here.\n"
    "Bees visit many kinds of flower in spring. "
    "They make honey from the nectar they gather. "
    "Beekeepers harvest the honey in late summer. "
    "The weather was mild last year. "
    "Ice cream shops opened early in the town."
)
BREAD = "Bread needs flour. Honey bread rises slowly with yeast. Ovens are hot."
QUESTION = "How do bees make honey?"


def passage_of(document: str, doc_id: str, start: int = 0, end: int | None = None) -> Passage:
    end = len(document) if end is None else end
    chunk = Chunk(doc_id, document[start:end], start, end)
    return Passage(chunk, 1.0, doc_id, doc_id.title())


def words(passages: list[Passage]) -> int:
    return sum(len(p.chunk.text.split()) for p in passages)


def test_budget_zero_or_passages_that_fit_are_unchanged() -> None:
    passages = [passage_of(DOCUMENT, "bees"), passage_of(BREAD, "bread")]
    embedder = BagOfWordsEmbedder()
    assert compress_passages(QUESTION, passages, embedder, 0) == passages
    assert compress_passages(QUESTION, passages, embedder, 10_000) == passages


def test_keeps_the_question_sentences_within_the_budget_at_exact_offsets() -> None:
    start = DOCUMENT.index("Bees")
    passages = [passage_of(DOCUMENT, "bees", start), passage_of(BREAD, "bread")]
    compressed = compress_passages(QUESTION, passages, BagOfWordsEmbedder(), 24)
    assert [p.chunk.doc_id for p in compressed] == ["bees", "bread"]
    bees = compressed[0].chunk
    assert DOCUMENT[bees.start : bees.end] == bees.text
    assert "They make honey from the nectar they gather." in bees.text
    assert "Ice cream" not in bees.text
    assert words(compressed) <= 24
    bread = compressed[1].chunk
    assert BREAD[bread.start : bread.end] == bread.text and "Honey bread" in bread.text


def test_every_passage_keeps_its_best_sentence_even_under_a_tiny_budget() -> None:
    passages = [passage_of(DOCUMENT, "bees"), passage_of(BREAD, "bread")]
    compressed = compress_passages(QUESTION, passages, BagOfWordsEmbedder(), 1)
    assert len(compressed) == 2
    assert compressed[0].chunk.text in {
        "They make honey from the nectar they gather.",
        "Beekeepers harvest the honey in late summer.",
    }
    assert compressed[1].chunk.text == "Honey bread rises slowly with yeast."


def test_spare_budget_adds_the_neighbouring_sentences() -> None:
    passages = [passage_of(DOCUMENT, "bees")]
    narrow = compress_passages(QUESTION, passages, BagOfWordsEmbedder(), 9)[0].chunk
    wider = compress_passages(QUESTION, passages, BagOfWordsEmbedder(), 30)[0].chunk
    assert wider.start <= narrow.start and wider.end >= narrow.end
    assert len(wider.text) > len(narrow.text)
    assert DOCUMENT[wider.start : wider.end] == wider.text


def test_term_overlap_ranks_the_sentence_with_the_question_terms_first() -> None:
    sentences = ["Bees make honey.", "The weather was mild.", "Honey is sweet."]
    scores = term_overlap("Do bees make honey?", sentences)
    assert scores.argmax() == 0 and scores.max() == 1.0
    assert scores[1] == 0.0
    assert all(term_overlap("the of and", sentences) == 0.0)


def test_the_model_reads_the_compressed_passage_and_the_citation_quotes_its_exact_span(
    tmp_path: Path,
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bees.txt").write_text(DOCUMENT)
    settings = Settings(
        index_dir=tmp_path / "index", top_k=1, min_relevance=-1.0, prompt_passage_tokens=16, chunk_tokens=200
    )
    Assistant(settings, embedder=BagOfWordsEmbedder()).ingest([docs])
    generator = ScriptedGenerator("They make honey from nectar [1].")
    assistant = Assistant(
        settings, embedder=BagOfWordsEmbedder(), generator=generator, support_checker=KeywordChecker()
    )
    answer = assistant.ask(QUESTION)
    prompt = generator.calls[0][-1]["content"]
    assert "They make honey from the nectar they gather." in prompt
    assert "Ice cream" not in prompt
    [citation] = answer.citations
    assert DOCUMENT[citation.start : citation.end] == citation.quote
    assert "honey" in citation.quote and len(citation.quote) < len(DOCUMENT)
    assert "compression_seconds" in answer.timings
