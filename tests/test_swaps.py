"""Generated unanswerable questions: each swap kind, and the check that the swapped-in value is absent
from the gold paragraph."""

from __future__ import annotations

import json
import random

from rag.evaluation.datasets import load_squad
from rag.evaluation.swaps import (
    dates,
    document_paragraphs,
    entities,
    generate,
    insert_negation,
    numbers,
    occurs,
    question_rng,
    squad_from_documents,
    swap_antonym,
    swap_value,
    unanswerable_squad,
    value_pool,
)

GOLD = (
    "The Denver Broncos defeated the Carolina Panthers 24-10 in Super Bowl 50 on February 7, 2016, at "
    "Levi's Stadium. Peyton Manning threw for 141 yards."
)
ARTICLE = [
    GOLD,
    "The Seattle Seahawks won Super Bowl 48 in 2014 at MetLife Stadium. Russell Wilson threw for 206 yards.",
    "In 1998 the game was played in San Diego before 68,912 fans; the New England Patriots lost.",
]


def rng() -> random.Random:
    return random.Random(0)


def test_values_are_found_by_kind():
    assert [d.text for d in dates("Played on February 7, 2016 and again in 1998 or the 1990s.")] == [
        "February 7, 2016",
        "1998",
        "1990s",
    ]
    assert [n.text for n in numbers("He threw for 141 yards before 68,912 fans in 2016.")] == [
        "141",
        "68,912",
    ]
    names = [
        e.text for e in entities("Which team did the Denver Broncos beat at Levi's Stadium in Super Bowl 50?")
    ]
    assert names == ["Denver Broncos", "Levi's Stadium", "Super Bowl 50"]
    # a capitalised word the article also writes in lower case is not a name
    assert [e.text for e in entities("Why did Defense win?", frozenset({"defense"}))] == []


def test_occurs_matches_whole_words_normalised():
    assert occurs("68912", "before 68,912 fans")
    assert occurs("levi’s stadium", GOLD)
    assert not occurs("50", "Super Bowl 500")


def test_entity_swap_takes_a_name_of_the_article_absent_from_the_gold_paragraph():
    question = "Which team did the Denver Broncos defeat in Super Bowl 50?"
    pool = value_pool(ARTICLE, "entity")
    for seed in range(20):
        swap = swap_value(question, "entity", GOLD, pool, ["Carolina Panthers"], random.Random(seed))
        assert swap is not None and swap.kind == "entity"
        assert occurs(swap.original, GOLD)
        assert not occurs(swap.replacement, GOLD)  # the check
        assert swap.replacement in pool and swap.replacement in swap.question
        assert len(swap.replacement.split()) == len(swap.original.split())


def test_entity_swap_refuses_when_every_candidate_is_in_the_gold_paragraph():
    pool = ["Carolina Panthers", "Peyton Manning"]  # both stated by the gold paragraph
    assert swap_value("Whom did the Denver Broncos beat?", "entity", GOLD, pool, [], rng()) is None


def test_number_swap_keeps_the_shape_and_checks_absence():
    question = "How many yards did Peyton Manning throw for, 141?"
    swap = swap_value(question, "number", GOLD, value_pool(ARTICLE, "number"), ["141 yards"], rng())
    assert swap is not None and swap.original == "141"
    assert swap.replacement == "206"  # three digits like 141; 48 and 68,912 have another shape
    assert not occurs(swap.replacement, GOLD)
    assert swap.question == "How many yards did Peyton Manning throw for, 206?"


def test_date_swap_keeps_the_form_and_checks_absence():
    question = "Who won the game played in 2016?"
    swap = swap_value(question, "date", GOLD, value_pool(ARTICLE, "date"), ["Denver Broncos"], rng())
    assert swap is not None and swap.original == "2016"
    assert swap.replacement in ("2014", "1998") and not occurs(swap.replacement, GOLD)


def test_value_swap_needs_the_original_in_the_gold_paragraph():
    # 1998 is not in the gold paragraph: swapping it would not change what the paragraph answers
    assert swap_value("Who won in 1998?", "date", GOLD, ["2014"], [], rng()) is None


def test_replacement_never_contains_a_gold_answer():
    swap = swap_value(
        "Who played in Super Bowl 50?", "entity", GOLD, ["Seattle Seahawks"], ["Seahawks"], rng()
    )
    assert swap is None


def test_antonym_swap_checks_the_gold_paragraph():
    swap = swap_antonym("Who had the most sacks in the first half?", "He had 3 sacks.", rng())
    assert swap is not None and swap.kind == "antonym"
    assert (swap.original, swap.replacement) in (("most", "least"), ("first", "last"))
    assert swap.replacement in swap.question
    # the antonym is stated by the paragraph: no swap
    assert swap_antonym("Who won the game?", "The Broncos won and the Panthers lost.", rng()) is None
    assert swap_antonym("What is Denver?", GOLD, rng()) is None
    # capitals follow the word replaced
    capital = swap_antonym("Before the game, who sang?", "The anthem was sung.", rng())
    assert capital is not None and capital.question == "After the game, who sang?"


def test_negation_is_put_on_the_first_auxiliary():
    swap = insert_negation("When did the Broncos win Super Bowl 50?", GOLD, ["February 7, 2016"])
    assert swap is not None and swap.kind == "negation"
    assert swap.question == "When didn't the Broncos win Super Bowl 50?"
    assert insert_negation("Who is the coach?", "Gary Kubiak is the coach.", ["Gary Kubiak"]).question == (
        "Who isn't the coach?"
    )


def test_negation_is_not_inserted_twice_nor_where_the_paragraph_negates_the_answer():
    assert insert_negation("Who did not play?", GOLD, ["Peyton Manning"]) is None
    assert insert_negation("Who never played?", GOLD, ["Peyton Manning"]) is None
    negated = "Cam Newton did not recover the fumble."
    assert insert_negation("Who did recover the fumble?", negated, ["Cam Newton"]) is None
    assert insert_negation("Which team won Super Bowl 50", GOLD, ["Denver Broncos"]) is None  # no auxiliary


def test_generate_is_deterministic_per_seed_and_question():
    question = "Which team did the Denver Broncos defeat in Super Bowl 50 in 2016?"
    first = generate(question, GOLD, ["Carolina Panthers"], ARTICLE, question_rng(0, "q1"))
    again = generate(question, GOLD, ["Carolina Panthers"], ARTICLE, question_rng(0, "q1"))
    assert first == again
    assert {s.kind for s in first} >= {"entity", "date", "negation"}
    assert all(not occurs(s.replacement, GOLD) for s in first if s.kind in ("entity", "number", "date"))


def _squad(question: str, answer: str) -> list[dict]:
    return [
        {
            "title": "Super_Bowl_50",
            "paragraphs": [
                {
                    "context": text,
                    "qas": [
                        {
                            "id": f"q{i}",
                            "question": question,
                            "answers": [{"text": answer, "answer_start": text.find(answer)}],
                        }
                    ]
                    if i == 0
                    else [],
                }
                for i, text in enumerate(ARTICLE)
            ],
        }
    ]


def test_unanswerable_squad_keeps_originals_and_counts_kinds(tmp_path):
    data = _squad("When did the Denver Broncos win the first Super Bowl 50?", "February 7, 2016")
    articles, counts = unanswerable_squad(data, seed=3)
    qas = articles[0]["paragraphs"][0]["qas"]
    assert qas[0]["id"] == "q0" and qas[0]["is_impossible"] is False and qas[0]["answers"]
    generated = qas[1:]
    assert counts["original"] == 1 and sum(v for k, v in counts.items() if k != "original") == len(generated)
    for qa in generated:
        assert qa["is_impossible"] is True and qa["answers"] == []
        assert qa["plausible_answers"] == qas[0]["answers"]
        assert qa["id"] == f"q0-{qa['swap']['kind']}" and qa["swap"]["original_id"] == "q0"
    assert unanswerable_squad(data, seed=3) == (articles, counts)
    capped, capped_counts = unanswerable_squad(data, seed=3, max_per_question=1)
    assert len(capped[0]["paragraphs"][0]["qas"]) == 2
    # the written file reads as SQuAD 2.0: the generated questions are unanswerable
    path = tmp_path / "swaps.json"
    path.write_text(json.dumps({"version": "v2.0", "data": articles}))
    loaded = load_squad(path, "0:")
    assert [q.answerable for q in loaded.questions] == [True] + [False] * len(generated)


def test_documents_become_squad_articles_with_questions_at_their_answers():
    text = (
        "# Guide\n\nIntro text that is long enough to be a paragraph on its own, surely, yes.\n\n## Port\n\n"
        + ("The web chat listens on port 8000 by default, on the loopback address only.")
    )
    assert document_paragraphs(text)[1].startswith("## Port")
    articles = squad_from_documents(
        {"documents/guide.md": text},
        [
            ("d1", "Which port?", "documents/guide.md", ["8000"]),
            ("d2", "Lost?", "documents/guide.md", ["nowhere"]),
        ],
    )
    paragraphs = articles[0]["paragraphs"]
    assert [len(p["qas"]) for p in paragraphs] == [0, 1]
    answer = paragraphs[1]["qas"][0]["answers"][0]
    assert paragraphs[1]["context"][answer["answer_start"] :].startswith("8000")


def test_names_are_swapped_for_like_names():
    from rag.evaluation.swaps import shape

    article = "\n\n".join(ARTICLE) + " Later the Panthers and the Broncos met; Manning and Newton met too."
    assert shape("Panthers", "entity", article) == shape("Broncos", "entity", article) == "1T"
    assert shape("Manning", "entity", article) == shape("Newton", "entity", article) == "1"
    assert shape("NFL", "entity") == "1A"
    question = "Who did the Panthers beat?"
    gold = "The Panthers beat the Seahawks."
    for seed in range(10):
        swap = swap_value(
            question, "entity", gold, ["Broncos", "Newton"], [], random.Random(seed), article=article
        )
        assert swap is not None and swap.replacement == "Broncos"
