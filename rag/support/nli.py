"""Support from a Hugging Face NLI cross-encoder's entailment probability."""

from __future__ import annotations

from collections.abc import Sequence

from rag.errors import ModelUnavailableError


class CrossEncoderSupportChecker:
    """A Hugging Face NLI cross-encoder: support is its entailment probability for (evidence, claim)."""

    def __init__(self, model: str, *, allow_downloads: bool = False) -> None:
        try:
            from sentence_transformers import CrossEncoder

            self.model = CrossEncoder(model, device="cpu", local_files_only=not allow_downloads)
        except Exception as exc:  # sentence-transformers raises many kinds for a missing model
            raise ModelUnavailableError(
                f"Cannot load the NLI model {model!r}: {exc}. Give a local folder or a downloaded Hugging "
                "Face id, or unset `support_model` for the offline checker."
            ) from exc
        labels = {v.lower(): int(k) for k, v in self.model.model.config.id2label.items()}
        entailment = [i for label, i in labels.items() if label.startswith("entail")]
        if not entailment:
            raise ModelUnavailableError(
                f"{model!r} has no 'entailment' label ({sorted(labels)}): not an NLI model."
            )
        self.entailment = entailment[0]
        self.name = f"nli:{model}"

    def score(self, claims: Sequence[str], evidence: Sequence[Sequence[str]]) -> list[float]:
        pairs = [(" ".join(texts), claim) for claim, texts in zip(claims, evidence, strict=True)]
        if not pairs:
            return []
        probabilities = self.model.predict(pairs, apply_softmax=True, convert_to_numpy=True)
        return [
            float(p[self.entailment]) if texts else 0.0
            for p, texts in zip(probabilities, evidence, strict=True)
        ]
