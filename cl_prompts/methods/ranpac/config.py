"""Configuration of ``ranpac``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods import options as o
from cl_prompts.methods.config import MethodConfig


def _seed(name: str, value: object) -> None:
    o.non_negative(name, value, integer=True, allow_none=True)


@dataclass
class RanPACConfig(MethodConfig):
    """A ridge classifier on random ReLU features of the frozen query (no gradient training).

    McDonnell et al., "RanPAC: Random Projections and Pre-trained Models for Continual
    Learning", NeurIPS 2023, without its first-session adaptation: the frozen query q
    (unit-normalised) is expanded to h = ReLU(q W), W (D, M) Gaussian and fixed; every
    experience adds h h^T to a Gram matrix G and h to its class's column of Q; at the end of
    each experience the readout is solved as (G + ridge I)^-1 Q. The result does not depend on
    the order of the data. The paper reads the last layer only, uses M = 10,000 and picks the
    ridge per run on a split of the training data; here the ridge is a config value. ``lr``,
    ``weight_decay`` and ``optimizer`` are unused.

    Options:

    - ``ridge``: the L2 strength, in the units of G (sums over samples);
    - ``layers``: the feature is the pooled outputs of the backbone's last ``layers`` layers,
      each at unit length, concatenated (multi-layer features as in LayUP, Ahrens et al., 2024);
    - ``projection_dim``: M, the random features (memory: a float64 (M, M) Gram matrix, 800 MB
      at 10,000, in memory and in each checkpoint);
    - ``projection_seed``: seed of W (None: drawn from torch's global RNG, i.e. the run seed);
    - ``normalize``: unit-normalise the query first;
    - ``ensemble``: N independent projections, each with its own statistics and readout;
      the logits are their mean. The prompt-free ensemble that docs/prompt_value.md
      compares learned prompts with (memory and solves: N times one).

    Defaults ``layers=4``, ``ridge=100`` and ``projection_dim=10000``, chosen on validation
    data; how, with the figures: docs/tuning.md#ranpac.
    """

    ridge: float = o.option(100.0, "the ridge (L2) strength, in the units of G (sums over samples)",
                            o.positive)
    layers: int = o.feature_layers(4)
    projection_dim: int = o.projection_dim(10000)
    projection_seed: int | None = o.option(None, "seed of the random projection; None draws it from "
                                           "torch's global RNG (the run seed)", _seed)
    normalize: bool = o.normalize()
    ensemble: int = o.option(1, "independent random projections whose readouts' logits are averaged "
                                "(each one a Gram matrix and a solve)", o.positive_int)

    PRESETS = {"ensemble2": {"ridge": 100.0, "layers": 4, "projection_dim": 10000, "projection_seed": None,
                             "normalize": True, "ensemble": 2}}
