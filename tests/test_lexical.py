"""BM25 lexical index: stemming, stopwords, persistence, filters, and its rebuild at every commit."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rag.lexical import LexicalIndex, lexical_text, tokenize


def test_tokenize_stems_and_drops_stopwords() -> None:
    assert tokenize(["The volcanoes are erupting"]) == [["volcano", "erupt"]]


def test_search_ranks_matching_chunks_and_maps_rows_to_ids(tmp_path: Path) -> None:
    index = LexicalIndex.build(
        [10, 20, 30], ["Lava lakes on Erebus", "Sourdough bread and yeast", "Erebus volcano erupted lava"]
    )
    ids, scores = index.search("erupting lava", 5)
    assert ids.tolist() == [30, 10] and scores[0] > scores[1] > 0
    ids, _ = index.search("erupting lava", 5, allowed=np.array([10, 20]))
    assert ids.tolist() == [10]
    assert index.search("zebra", 5)[0].size == 0
    index.save(tmp_path / "lexical")
    loaded = LexicalIndex.load(tmp_path / "lexical")
    assert loaded.search("erupting lava", 5)[0].tolist() == [30, 10]


def test_empty_index_finds_nothing(tmp_path: Path) -> None:
    empty = LexicalIndex.build([], [])
    assert empty.search("anything", 3)[0].size == 0
    empty.save(tmp_path / "lexical")
    assert len(LexicalIndex.load(tmp_path / "lexical")) == 0


def test_title_goes_in_front_once() -> None:
    assert lexical_text("Bees", "They dance.") == "Bees\nThey dance."
    assert lexical_text("Bees", "Bees dance.") == "Bees dance."
