"""The confidence calibrator: one probability that an answer is right and supported, from its signals.

A logistic regression over standardised features (`rag/signals/features.py`), fitted on development
data by `python evals/fit_calibrator.py` and shipped as `rag/calibrator.json` with the command, the data
manifest and its held-out metrics. Reading it needs no scikit-learn: the model is a dot product.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import InvalidInputError

DEFAULT_CALIBRATOR = Path(__file__).resolve().parent.parent / "calibrator.json"
"""The calibrator shipped in the package (fitted on SQuAD 2.0 development articles)."""


@dataclass(frozen=True)
class HiddenProbe:
    """A linear probe on the generator's final hidden state at the end of the prompt (Slobodkin et al.
    2023): log-odds that the passages answer the question = b + w . (h - mean)."""

    weights: tuple[float, ...]
    intercept: float
    mean: tuple[float, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    def log_odds(self, hidden: Sequence[float]) -> float:
        if len(hidden) != len(self.weights):
            return math.nan  # another model's hidden state: the probe does not apply
        return self.intercept + math.fsum(
            w * (h - m) for w, h, m in zip(self.weights, hidden, self.mean, strict=True)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "weights": [round(w, 7) for w in self.weights],
            "intercept": round(self.intercept, 6),
            "mean": [round(m, 5) for m in self.mean],
            **self.metadata,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HiddenProbe:
        if len(data["weights"]) != len(data["mean"]):
            raise ValueError("the probe's weights and mean differ in length")
        return cls(
            tuple(float(w) for w in data["weights"]),
            float(data["intercept"]),
            tuple(float(m) for m in data["mean"]),
            {k: v for k, v in data.items() if k not in ("weights", "intercept", "mean")},
        )


def fit_probe(
    states: Sequence[Sequence[float]], labels: Sequence[int], components: int = 32, c: float = 0.1
) -> HiddenProbe:
    """Fit the probe (scikit-learn: standardise, PCA to `components`, L2 logistic regression) and fold the
    pipeline, linear end to end, into one weight vector over the raw hidden state."""
    import numpy as np
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(states, dtype=np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    pca = PCA(n_components=min(components, len(x) - 1, x.shape[1]), random_state=0).fit(z)
    model = LogisticRegression(C=c, max_iter=2000).fit(pca.transform(z), np.asarray(labels))
    weights = (pca.components_.T @ model.coef_[0]) / scale
    intercept = float(model.intercept_[0] - model.coef_[0] @ (pca.components_ @ pca.mean_))
    return HiddenProbe(tuple(float(w) for w in weights), intercept, tuple(float(m) for m in mean))


@dataclass(frozen=True)
class Calibrator:
    """Logistic regression on standardised features:
    P(right) = sigmoid(b + sum_i w_i (x_i - mean_i) / scale_i)."""

    features: tuple[str, ...]
    weights: tuple[float, ...]
    intercept: float
    means: tuple[float, ...]
    scales: tuple[float, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    probe: HiddenProbe | None = None
    """The hidden-state probe whose log-odds is the `hidden_probe` signal (None: not fitted)."""

    def probability(self, signals: Mapping[str, float]) -> float:
        """P(the answer is right and supported) for one answer's signals (a missing or NaN one reads as
        its development mean)."""
        z = self.intercept
        for name, weight, mean, scale in zip(
            self.features, self.weights, self.means, self.scales, strict=True
        ):
            value = float(signals.get(name, mean))
            z += weight * ((mean if math.isnan(value) else value) - mean) / scale
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    def probabilities(self, rows: Sequence[Mapping[str, float]]) -> list[float]:
        return [self.probability(row) for row in rows]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "logistic_regression",
            "features": list(self.features),
            "weights": [round(w, 6) for w in self.weights],
            "intercept": round(self.intercept, 6),
            "means": [round(m, 6) for m in self.means],
            "scales": [round(s, 6) for s in self.scales],
            **self.metadata,
            **({"probe": self.probe.to_dict()} if self.probe is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibrator:
        names = ("features", "weights", "means", "scales")
        lengths = {len(data[n]) for n in names}
        if len(lengths) != 1:
            raise ValueError("features, weights, means and scales differ in length")
        core = {*names, "kind", "intercept", "probe"}
        return cls(
            tuple(data["features"]),
            tuple(float(w) for w in data["weights"]),
            float(data["intercept"]),
            tuple(float(m) for m in data["means"]),
            tuple(float(s) or 1.0 for s in data["scales"]),
            {k: v for k, v in data.items() if k not in core},
            HiddenProbe.from_dict(data["probe"]) if data.get("probe") else None,
        )

    @classmethod
    def load(cls, path: Path = DEFAULT_CALIBRATOR) -> Calibrator:
        """The calibrator stored at `path`, or InvalidInputError naming the file and what is wrong."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(
                f"Cannot read the confidence calibrator {path}: {exc}. Fit one with "
                "`python evals/fit_calibrator.py` or unset `calibrator_path`."
            ) from exc

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


def fit_calibrator(
    rows: Sequence[Mapping[str, float]], labels: Sequence[int], features: Sequence[str], c: float = 1.0
) -> Calibrator:
    """Fit the logistic regression (scikit-learn, L2 with strength 1/`c`, balanced classes off) on rows
    of signals and 0/1 labels."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.asarray([[float(r.get(f, np.nan)) for f in features] for r in rows], dtype=np.float64)
    means = np.nan_to_num(np.nanmean(x, axis=0))
    x = np.where(np.isnan(x), means, x)
    scales = x.std(axis=0)
    scales[scales == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=2000).fit((x - means) / scales, np.asarray(labels))
    return Calibrator(
        tuple(features),
        tuple(float(w) for w in model.coef_[0]),
        float(model.intercept_[0]),
        tuple(float(m) for m in means),
        tuple(float(s) for s in scales),
    )
