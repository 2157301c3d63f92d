"""The shared text rules: sentences, citation markers, stop words and stemmed content terms."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.text import cited_numbers, content_terms, sentence_spans, split_sentences, strip_citations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Ferries run daily [2]. They stop in storms [1][3].",
            ["Ferries run daily [2].", "They stop in storms [1][3]."],
        ),
        ("It opened in 1987. [1] It closed later [2].", ["It opened in 1987. [1]", "It closed later [2]."]),
        ("It opened in 1987. [1, 2] It closed [3; 4].", ["It opened in 1987. [1, 2]", "It closed [3; 4]."]),
        ("Dr. Smith paid 3.5 million, e.g. in cash [1].", ["Dr. Smith paid 3.5 million, e.g. in cash [1]."]),
        ("J. R. R. Tolkien wrote it [1].", ["J. R. R. Tolkien wrote it [1]."]),
        ("First line [1]\n- second item [2]", ["First line [1]", "- second item [2]"]),
        ("No stop at the end [4]", ["No stop at the end [4]"]),
        ('He said "no." Then he left [1].', ['He said "no."', "Then he left [1]."]),
        ("Founded in 1990.[1] The town grew.", ["Founded in 1990.[1]", "The town grew."]),
        ("Lava flows; it cools. then hardens.", ["Lava flows; it cools. then hardens."]),
        ("", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


@given(st.text(alphabet=st.sampled_from(list("ab Z.!?\"'[]1,;\n\r\t\u2028")), max_size=60))
def test_sentence_spans_are_stripped_slices_that_cover_the_text(text: str) -> None:
    spans = sentence_spans(text)
    covered = {i for start, end in spans for i in range(start, end)}
    assert all(text[start:end] == text[start:end].strip() != "" for start, end in spans)
    assert all(i in covered or char.isspace() for i, char in enumerate(text))
    assert [start for start, _ in spans] == sorted(start for start, _ in spans)


def test_citations_are_found_in_every_form() -> None:
    assert cited_numbers("a [2] b [1, 3] c [2][4] d [5; 6] e [ 7 ]") == [2, 1, 3, 4, 5, 6, 7]
    assert cited_numbers("a [b] c [1.5] d [] e") == []
    assert strip_citations("Ferries run daily [2][3] .") == "Ferries run daily."
    assert strip_citations("About 1.86 million [1, 2].") == "About 1.86 million."


def test_content_terms_drop_stopwords_and_stem() -> None:
    assert content_terms("The volcanoes were climbed in 1908") == ["volcano", "climb", "1908"]
