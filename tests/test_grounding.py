"""Answer sentences with their citations, and the per-sentence support check of answers."""

from __future__ import annotations

from collections.abc import Sequence

from fakes import KeywordChecker

from rag.grounding import (
    NO_ANSWER,
    answer_citations,
    answer_sentences,
    attribute_citations,
    build_messages,
    check_sentences,
    claim_of,
    flag_contradicted,
    is_refusal,
)
from rag.types import Answer, AnswerSentence, Chunk, Passage


def passage(text: str, doc: str = "d") -> Passage:
    return Passage(Chunk(doc, text, 0, len(text)), 0.9, doc, doc.title())


def test_invalid_and_missing_citations_are_detected() -> None:
    sentences = answer_sentences(
        "Ferries run daily [2]. Boats fly [7][1]. Nothing cited here.", passage_count=2
    )
    assert [s.citations for s in sentences] == [(2,), (1,), ()]
    assert [s.invalid_citations for s in sentences] == [(), (7,), ()]


def test_check_sentences_marks_unsupported_uncited_and_invalid() -> None:
    passages = [passage("ferries run daily in summer"), passage("boats sink")]
    sentences = answer_sentences("Ferries run daily [1]. Ferries fly [1]. Boats sink. Boats sink [3].", 2)
    checked = check_sentences(sentences, passages, KeywordChecker(), threshold=0.5)
    assert [s.supported for s in checked] == [True, False, False, False]
    assert checked[0].support == 1.0 and checked[2].support == 0.0


def test_claim_checks_unsupport_contradicted_sentences_with_their_reasons() -> None:
    passages = [
        passage("Scanned PDFs cannot be read, because rag has no OCR."),
        passage("Ferries run daily."),
    ]
    text = "Yes, rag supports OCR for scanned PDFs [1]. Ferries run daily [2]. Ferries cost 5 euros [2]."
    checked = check_sentences(answer_sentences(text, 2), passages, KeywordChecker(), threshold=0.0)
    flagged = flag_contradicted(checked, passages, question="Does rag read scanned PDFs?")
    assert [s.supported for s in flagged] == [False, True, False]
    assert "negates" in flagged[0].issues[0] and flagged[0].support == 0.0
    assert flagged[2].issues == ("'5' is not in the cited passages",)
    assert flagged[1] == checked[1]


def test_answer_to_dict_carries_sentences_and_keeps_the_old_keys() -> None:
    answer = Answer("A [1].", False, sentences=[AnswerSentence("A [1].", (1,), (), True, 0.91234)])
    shape = answer.to_dict()
    old_keys = {"answer", "abstained", "citations", "timings", "sentences", "refusal_probability"}
    assert set(shape) == old_keys | {"limitations", "confidence", "recovered"}
    assert shape["sentences"] == [
        {
            "text": "A [1].",
            "citations": [1],
            "attributed": False,
            "supported": True,
            "support": 0.9123,
            "issues": [],
        }
    ]
    unchecked = AnswerSentence("B.").to_dict()
    assert unchecked["supported"] is None and unchecked["support"] is None


def test_refusals_are_recognised() -> None:
    assert is_refusal(NO_ANSWER)
    assert is_refusal("The sources do not mention his birthday.")
    assert not is_refusal("Ferries run daily [1].")


def test_short_style_changes_instruction_and_demonstration() -> None:
    sentence = build_messages("How often?", [passage("daily")])
    short = build_messages("How often?", [passage("daily")], style="short")
    assert sentence[2]["content"] != short[2]["content"] and "shortest phrase" in short[0]["content"]
    assert short[-1]["content"].endswith("Question: How often?")


def test_uncited_sentences_get_the_best_supporting_passage_marked_attributed() -> None:
    passages = [passage("ferries run daily in summer"), passage("boats sink in storms")]
    text = "Ferries run daily [1]. Boats sink. Whales sing."
    sentences = attribute_citations(answer_sentences(text, 2), passages, KeywordChecker(), min_support=0.5)
    assert [(s.citations, s.attributed) for s in sentences] == [((1,), False), ((2,), True), ((), False)]
    checked = check_sentences(sentences, passages, KeywordChecker(), threshold=0.5)
    assert [s.supported for s in checked] == [True, True, False]
    assert [c.n for c in answer_citations(text, checked, passages)] == [1, 2]


def test_short_answers_are_checked_with_their_question() -> None:
    assert claim_of("Once a day [2].", "How often do ferries run in winter?") == (
        "How often do ferries run in winter? Once a day."
    )
    assert claim_of("Once a day [2].") == "Once a day."
    # "In storms" is supported by the first passage alone, but with its question only by the second.
    passages = [passage("storms rage in winter"), passage("boats sink in storms")]
    sentences = answer_sentences("In storms.", 2)
    assert attribute_citations(sentences, passages, KeywordChecker(), min_support=0.5)[0].citations == (1,)
    asked = attribute_citations(sentences, passages, KeywordChecker(), min_support=0.5, question="Boats sink")
    assert asked[0].citations == (2,)
    wrong = answer_sentences("In storms [1].", 2)
    assert check_sentences(wrong, passages, KeywordChecker(), 0.5)[0].supported
    assert not check_sentences(wrong, passages, KeywordChecker(), 0.5, question="Boats sink")[0].supported


def test_a_sentence_citing_the_wrong_passage_gets_the_right_one_added() -> None:
    passages = [passage("ferries run daily in summer"), passage("boats sink in storms")]
    sentences = answer_sentences("Boats sink [1]. Ferries run daily [1]. Whales sing [2].", 2)
    repaired = attribute_citations(sentences, passages, KeywordChecker(), min_support=0.5)
    assert [(s.citations, s.attributed) for s in repaired] == [((1, 2), True), ((1,), False), ((2,), False)]
    checked = check_sentences(repaired, passages, KeywordChecker(), threshold=0.5)
    assert [s.supported for s in checked] == [True, True, False]


def test_sentences_already_scored_are_not_scored_again() -> None:
    class Counting(KeywordChecker):
        claims: list[str] = []

        def score(self, claims: Sequence[str], evidence: Sequence[Sequence[str]]) -> list[float]:
            self.claims.extend(claims)
            return super().score(claims, evidence)

    checker = Counting()
    passages = [passage("ferries run daily in summer"), passage("boats sink in storms")]
    first = check_sentences(
        answer_sentences("Ferries run daily [1]. Boats sink [1].", 2), passages, checker, 0.5
    )
    repaired = attribute_citations(first, passages, checker, min_support=0.5)
    checked = check_sentences(repaired, passages, checker, 0.5)
    assert [s.supported for s in checked] == [True, True]
    assert checker.claims.count("Ferries run daily.") == 1  # scored once, then kept
