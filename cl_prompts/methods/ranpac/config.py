"""Configuration of ``ranpac``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods.config import MethodConfig, check_bool, check_layers, check_positive


@dataclass
class RanPACConfig(MethodConfig):
    """A ridge classifier on random ReLU features of the frozen query (no gradient training).

    McDonnell et al., "RanPAC: Random Projections and Pre-trained Models for Continual
    Learning", NeurIPS 2023, without its first-session adaptation: the frozen query q
    (unit-normalised) is expanded to h = ReLU(q W), W (D, M) Gaussian and fixed; every
    experience adds h h^T to a Gram matrix G and h to its class's column of Q; at the end
    of each experience the readout is solved as (G + ridge I)^-1 Q. The paper picks the
    ridge per run on a split of the training data; here it is a config value chosen on
    validation data (defaults: benchmarks/tune.py, figures in docs/methods.md).

    Args:
        ridge: the ridge (L2) strength, in the units of G (sums over samples).
        layers: q is the last ``layers`` layers' pooled outputs, each at unit length,
            concatenated (the paper: the last layer only; multi-layer features as in
            LayUP, Ahrens et al., 2024). Defaults ``layers`` 4 and ``ridge`` 100: mean
            validation accuracy 94.31 over CLINC150 (96.77) and HWU64 (91.85); 2 layers:
            93.80, the last layer alone: 93.52; with 4 layers ridge 10 / 300 / 1000 gave
            93.86 / 94.12 / 93.09.
        projection_dim: M, the number of random features (the paper uses 10,000).
        projection_seed: seed of W; None draws it from torch's global RNG (the run seed).
        normalize: unit-normalise the query before the projection.
        lr / weight_decay / optimizer: unused (nothing is trained by gradient).
    """

    ridge: float = 100.0
    layers: int = 4
    projection_dim: int = 5000
    projection_seed: int | None = None
    normalize: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_layers(self.layers)
        check_positive("ridge", self.ridge)
        check_positive("projection_dim", self.projection_dim, integer=True)
        if self.projection_seed is not None:
            check_positive("projection_seed", self.projection_seed, integer=True, allow_zero=True)
        check_bool("normalize", self.normalize)
