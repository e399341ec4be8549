"""Configuration of ``slda``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods import options as o
from cl_prompts.methods.config import MethodConfig


def _shrinkage(name: str, value: object) -> None:
    o.positive(name, value)
    if value >= 1:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")


@dataclass
class SLDAConfig(MethodConfig):
    """Linear discriminant analysis on the frozen query, updated from running sums.

    Hayes & Kanan, "Lifelong Machine Learning with Deep Streaming Linear Discriminant
    Analysis", CVPRW 2020: class means mu_c and one covariance S shared by all classes;
    logits x P mu_c - mu_c P mu_c / 2 with P = ((1 - shrinkage) S + shrinkage I)^-1. The
    covariance here is the exact within-class scatter of everything observed (from float64
    sums), not the paper's one-sample-at-a-time approximation, so the result does not depend on
    the order of the data. The paper reads the last layer only, with shrinkage 1e-4. ``lr``,
    ``weight_decay`` and ``optimizer`` are unused.

    Options:

    - ``shrinkage``: weight of the identity in the covariance, in (0, 1);
    - ``layers``: the feature is the pooled outputs of the backbone's last ``layers`` layers,
      each at unit length, concatenated;
    - ``normalize``: unit-normalise the query first.

    Defaults ``layers=4`` and ``shrinkage=1e-6``, chosen on validation data; how, with the
    figures: docs/tuning.md#slda.
    """

    shrinkage: float = o.option(1e-6, "weight of the identity in the covariance, in (0, 1)", _shrinkage)
    layers: int = o.feature_layers(4)
    normalize: bool = o.normalize()
