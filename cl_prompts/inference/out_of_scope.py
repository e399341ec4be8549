"""Out-of-scope scores, their calibration on in-scope validation data, and their evaluation.

A score is computed from a method's logits (B, C) (classes never seen are ``-inf``) and,
for ``max_logit+similarity``, from the method's ``class_similarity`` (the cosine to the
nearest class mean: a distance to the training data, which the logits of a
discriminative readout do not see); higher means "more in scope". An input is rejected when its score is below the
threshold, which :func:`calibrate` sets so that a chosen share of *in-scope* validation
inputs (``false_rejection``, default 5%) would be rejected: no out-of-scope example is
needed to set it. The probabilities shown to users are ``softmax(logits / T)`` with the
temperature ``T`` fitted on the same validation data (closed-form methods' logits are
regression outputs near 0..1, so ``T = 1`` would give near-uniform probabilities).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from cl_prompts.inference.defaults import (
    COMBINED_SCORE,
    DEFAULT_FALSE_REJECTION,
    DEFAULT_SCORE,
    DEFAULT_SIMILARITY_WEIGHT,
    FALLBACK_SCORE,
    LOGIT_SCORES,
    SCORES,
)
from cl_prompts.safe_io import finite, printable, require


def out_of_scope_score(logits: Tensor, kind: str = FALLBACK_SCORE, temperature: float = 1.0) -> Tensor:
    """(B, C) logits -> (B,) in-scope scores (higher: more in scope).

    ``max_logit``: the best logit; ``max_probability``: the best of ``softmax(logits / T)``;
    ``energy``: ``T * logsumexp(logits / T)`` (Liu et al., 2020).
    """
    if kind not in LOGIT_SCORES:
        raise ValueError(f"score must be one of {list(LOGIT_SCORES)}, got {kind!r}")
    if logits.dim() != 2:
        raise ValueError(f"logits must be (B, C), got {tuple(logits.shape)}")
    z = logits.double()
    if kind == "max_logit":
        return z.amax(dim=1)
    if kind == "max_probability":
        return torch.softmax(z / temperature, dim=1).amax(dim=1)
    return temperature * torch.logsumexp(z / temperature, dim=1)


def fit_temperature(logits: Tensor, labels: Tensor, points: int = 241) -> float:
    """The T minimising the cross-entropy of ``softmax(logits / T)`` on (logits, labels).

    A log-spaced grid over ``[1e-3, 1e3]`` times the logits' spread (their standard
    deviation): deterministic, and bounded when the labels are separable (where the
    cross-entropy keeps falling as T -> 0). Rows whose true class has a ``-inf`` logit
    (a method that scores only some classes per input, e.g. ``growing_pool``'s candidate
    tasks) have an infinite cross-entropy at every T and are left out.
    """
    z = logits.detach().double()
    y = labels.detach().long()
    scored = torch.isfinite(z.gather(1, y[:, None]).squeeze(1))
    if not bool(scored.any()):
        raise ValueError("no calibration input has a finite logit for its own class")
    z, y = z[scored], y[scored]
    finite = torch.isfinite(z)
    z = torch.where(finite, z, torch.full_like(z, -torch.inf))
    spread = float(z[finite].std()) if int(finite.sum()) > 1 else 1.0
    spread = spread if math.isfinite(spread) and spread > 0 else 1.0
    grid = spread * torch.logspace(-3, 3, points, dtype=torch.float64)  # (P,)
    nll = torch.stack([torch.nn.functional.cross_entropy(z / t, y) for t in grid])  # (P,)
    return float(grid[int(torch.argmin(nll))])


def threshold_at(in_scope_scores: np.ndarray, false_rejection: float) -> float:
    """The score below which a ``false_rejection`` share of in-scope inputs falls."""
    if not 0.0 <= false_rejection < 1.0:
        raise ValueError(f"false_rejection must be in [0, 1), got {false_rejection!r}")
    s = np.sort(np.asarray(in_scope_scores, dtype=np.float64))
    if s.size == 0:
        raise ValueError("calibration needs at least one in-scope input")
    return float(s[int(math.floor(false_rejection * s.size))])


def auroc(in_scope: np.ndarray, out_of_scope: np.ndarray) -> float:
    """P(in-scope score > out-of-scope score), ties counting one half (Mann-Whitney U)."""
    a = np.asarray(in_scope, dtype=np.float64)
    b = np.sort(np.asarray(out_of_scope, dtype=np.float64))
    if a.size == 0 or b.size == 0:
        raise ValueError("AUROC needs in-scope and out-of-scope scores")
    below = np.searchsorted(b, a, side="left")  # out-of-scope scores strictly below each a
    ties = np.searchsorted(b, a, side="right") - below
    return float((below + 0.5 * ties).sum() / (a.size * b.size))


@dataclass
class Calibration:
    """How a model's predictions are turned into probabilities and accept/reject decisions.

    score / threshold: the out-of-scope score and the value below which an input is
    rejected; false_rejection: the share of in-scope calibration inputs it rejects;
    temperature: of the probabilities; source: what it was fitted on (e.g.
    ``"clinc150: 3000 held-out in-scope texts"``). For ``max_logit+similarity``:
    ``standardise`` holds the mean and standard deviation of each part on the calibration
    inputs, and the score is ``z(max_logit) + similarity_weight * z(similarity)``.
    """

    score: str = FALLBACK_SCORE
    threshold: float = float("-inf")
    false_rejection: float = DEFAULT_FALSE_REJECTION
    temperature: float = 1.0
    source: str = ""
    similarity_weight: float = DEFAULT_SIMILARITY_WEIGHT
    standardise: dict[str, list[float]] | None = None

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise ValueError(f"score must be one of {list(SCORES)}, got {self.score!r}")
        if not (isinstance(self.temperature, (int, float)) and self.temperature > 0):
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        if not 0.0 <= self.false_rejection < 1.0:
            raise ValueError(f"false_rejection must be in [0, 1), got {self.false_rejection!r}")
        if self.score == COMBINED_SCORE and self.standardise is None:
            raise ValueError(f"score {COMBINED_SCORE!r} needs standardise (fit it with calibrate())")

    @property
    def needs_similarity(self) -> bool:
        return self.score == COMBINED_SCORE

    def scores(self, logits: Tensor, similarity: Tensor | None = None) -> Tensor:
        """(B, C) logits (and (B,) class similarity) -> (B,) in-scope scores."""
        if not self.needs_similarity:
            return out_of_scope_score(logits, self.score, self.temperature)
        if similarity is None:
            raise ValueError(f"score {self.score!r} needs the method's class similarity; this method has none")
        (m1, s1), (m2, s2) = self.standardise["max_logit"], self.standardise["similarity"]
        z_logit = (out_of_scope_score(logits, "max_logit") - m1) / s1
        return z_logit + self.similarity_weight * (similarity.double().cpu() - m2) / s2

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "calibration") -> Calibration:
        """A saved calibration, every value checked: a NaN threshold would accept every input, an
        infinite temperature flatten every probability. Errors name ``source``."""
        require(data, dict, source)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown calibration field(s) {unknown}; known: {sorted(known)}")
        score = require(data.get("score", FALLBACK_SCORE), str, f"{source}: score")
        if score not in SCORES:
            raise ValueError(f"{source}: score must be one of {list(SCORES)}, got {printable(score)!r}")
        values = dict(data)
        values["threshold"] = finite(data.get("threshold"), f"{source}: threshold")
        values["false_rejection"] = finite(data.get("false_rejection", DEFAULT_FALSE_REJECTION),
                                           f"{source}: false_rejection", 0.0, 0.999999)
        values["temperature"] = finite(data.get("temperature", 1.0), f"{source}: temperature", 1e-6, 1e6)
        values["similarity_weight"] = finite(data.get("similarity_weight", DEFAULT_SIMILARITY_WEIGHT),
                                             f"{source}: similarity_weight", 0.0, 1e6)
        require(data.get("source", ""), str, f"{source}: source")
        standardise = data.get("standardise")
        if standardise is not None:
            require(standardise, dict, f"{source}: standardise")
            values["standardise"] = {}
            if sorted(standardise) != ["max_logit", "similarity"]:
                raise ValueError(f"{source}: standardise must hold 'max_logit' and 'similarity', got "
                                 f"{sorted(map(printable, standardise))}")
            for part, pair in standardise.items():
                what = f"{source}: standardise.{part}"
                if not isinstance(pair, list) or len(pair) != 2:
                    raise ValueError(f"{what} must be [mean, std]")
                values["standardise"][part] = [finite(pair[0], f"{what} mean"),
                                               finite(pair[1], f"{what} std", 1e-12)]
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: {exc}") from None


def _mean_std(x: Tensor) -> list[float]:
    x = x.double()
    std = float(x.std()) if x.numel() > 1 else 0.0
    return [float(x.mean()), std if std > 0 else 1.0]


def calibrate(logits: Tensor, labels: Tensor, score: str = DEFAULT_SCORE,
              false_rejection: float = DEFAULT_FALSE_REJECTION, source: str = "",
              similarity: Tensor | None = None,
              similarity_weight: float = DEFAULT_SIMILARITY_WEIGHT) -> Calibration:
    """Fit the temperature and the rejection threshold on in-scope validation logits (N, C).

    similarity (N,): the method's ``class_similarity`` of the same inputs, needed by
    ``max_logit+similarity``.
    """
    if logits.shape[0] != labels.shape[0] or logits.shape[0] == 0:
        raise ValueError(f"calibration needs N >= 1 logits and N labels, got {logits.shape[0]} and {labels.shape[0]}")
    standardise = None
    if score == COMBINED_SCORE:
        if similarity is None:
            raise ValueError(f"score {score!r} needs the method's class similarity; this method has none")
        standardise = {"max_logit": _mean_std(out_of_scope_score(logits, "max_logit")),
                       "similarity": _mean_std(similarity)}
    cal = Calibration(score=score, false_rejection=false_rejection, temperature=fit_temperature(logits, labels),
                      source=source, similarity_weight=similarity_weight, standardise=standardise)
    cal.threshold = threshold_at(cal.scores(logits, similarity).numpy(), false_rejection)
    return cal


def rejection_report(in_scope: np.ndarray, out_of_scope: np.ndarray, threshold: float) -> dict[str, float]:
    """AUROC, and the recall of each side at ``threshold`` (in scope: score >= threshold)."""
    return {
        "auroc": auroc(in_scope, out_of_scope),
        "in_scope_recall": float(np.mean(np.asarray(in_scope) >= threshold)),
        "out_of_scope_recall": float(np.mean(np.asarray(out_of_scope) < threshold)),
    }
