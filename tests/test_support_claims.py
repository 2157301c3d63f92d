"""The cheap claim checks: values the cited passages never state, dropped negations and plans."""

from __future__ import annotations

import pytest

from rag.support.claims import (
    check_claim,
    claim_values,
    ungrounded_values,
    value_forms,
)

STREAMS = ["The default highWaterMark is 16384 bytes (16 KiB), or 16 objects in objectMode."]


@pytest.mark.parametrize(
    "claim",
    [
        "The default highWaterMark is 16 KiB [1].",
        "The default highWaterMark is 16,384 bytes [1].",
        "In objectMode the default is sixteen objects [1].",  # not a number word it knows: no value
    ],
)
def test_values_stated_in_another_form_are_grounded(claim: str) -> None:
    assert ungrounded_values(claim, STREAMS) == []


@pytest.mark.parametrize(
    ("claim", "missing"),
    [
        ("The default highWaterMark is 64 KiB [1].", "64 KiB"),
        ("Use fs.createReadStream() to change it [1].", "fs.createReadStream()"),
        ("Set it with --max-old-space-size [1].", "--max-old-space-size"),
        ("Node.js 18.2.0 changed it [1].", "18.2.0"),
        ("Ryan Dahl chose that default [1].", "Dahl"),  # a first word may be any word: not checked
    ],
)
def test_values_from_memory_are_ungrounded(claim: str, missing: str) -> None:
    assert missing in ungrounded_values(claim, STREAMS)


def test_values_the_question_states_may_be_repeated() -> None:
    question = "Is the default highWaterMark 64 KiB?"
    assert ungrounded_values("No, 64 KiB is not the default [1].", STREAMS, question) == []


def test_first_word_and_common_words_are_not_names() -> None:
    assert claim_values("The stream ends when it is done.") == []
    assert "Paris" in claim_values("The office moved to Paris in 2001.")


def test_number_forms_normalise_separators_and_units() -> None:
    assert {"16384", "16"} <= value_forms("16 KiB")
    assert "16384" in value_forms("16,384")
    assert "2" in value_forms("twice a day")


def test_a_dropped_negation_contradicts() -> None:
    evidence = ["Scanned PDFs without a text layer cannot be read, because rag has no OCR."]
    check = check_claim("Yes, rag supports OCR for scanned PDFs [1].", evidence)
    assert check.negation_mismatch and check.contradicted
    assert "negates" in " ".join(check.reasons())
    assert not check_claim("Scanned PDFs cannot be read, since rag has no OCR [1].", evidence).contradicted


def test_a_plan_presented_as_shipped_contradicts() -> None:
    evidence = ["OCR support is planned for version 0.2.0."]
    assert check_claim("Version 0.2.0 adds OCR support [1].", evidence).plan_mismatch
    assert not check_claim("OCR support is planned for version 0.2.0 [1].", evidence).contradicted


def test_a_bare_phrase_rests_on_no_sentence() -> None:
    evidence = ["The Oberoi Group is not a bank; its head office is in Delhi."]
    assert not check_claim("Delhi", evidence, "Where is the head office?").contradicted
