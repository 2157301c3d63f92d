"""Support checks: how well the passages a sentence cites support it, as a score in 0..1.

The offline default is `EvidenceSupportChecker` (lexical coverage, sentence similarity and token
alignment from the packaged embedder); `JudgeSupportChecker` asks the generator; users with a Hugging
Face NLI cross-encoder can set `support_model` to use its entailment probability instead.
`check_claim` adds cheap checks that any of them may miss: a value no cited passage states, or a
negation or plan the claim drops.
"""

from rag.support.base import SupportChecker
from rag.support.claims import ClaimCheck, check_claim
from rag.support.evidence import (
    DEFAULT_BIAS,
    DEFAULT_WEIGHTS,
    FEATURE_NAMES,
    EvidenceSupportChecker,
    evidence_features,
    token_alignment,
)
from rag.support.judge import JudgeSupportChecker
from rag.support.nli import CrossEncoderSupportChecker

__all__ = [
    "ClaimCheck",
    "check_claim",
    "DEFAULT_BIAS",
    "DEFAULT_WEIGHTS",
    "FEATURE_NAMES",
    "CrossEncoderSupportChecker",
    "EvidenceSupportChecker",
    "JudgeSupportChecker",
    "SupportChecker",
    "evidence_features",
    "token_alignment",
]
