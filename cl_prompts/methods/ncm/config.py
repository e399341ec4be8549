"""Configuration of ``ncm``."""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.methods import options as o
from cl_prompts.methods.config import MethodConfig

NCM_METRICS = ("cosine", "euclidean")


@dataclass
class NCMConfig(MethodConfig):
    """Nearest class mean on the frozen query features.

    SimpleCIL (Zhou et al., "Revisiting Class-Incremental Learning with Pre-Trained Models",
    2023): the prototypes are the class means of the frozen pretrained features and an input
    goes to the nearest one. No training at all: only ``observe()`` feeds the class sums, and a
    class's prototype is final once its experience ends (``lr``, ``weight_decay`` and
    ``optimizer`` are unused). The paper uses cosine similarity on the last layer.

    Options:

    - ``metric``: ``"cosine"`` (the paper) or ``"euclidean"`` (negative squared distance);
    - ``layers``: the feature is the pooled outputs of the backbone's last ``layers`` layers,
      each at unit length, concatenated.

    Defaults ``metric="euclidean"`` and ``layers=2``, chosen on validation data; how, with the
    figures: docs/tuning.md#ncm.
    """

    metric: str = o.option("euclidean", "'cosine' (the paper) or 'euclidean' (negative squared distance)",
                           o.one_of(NCM_METRICS))
    layers: int = o.feature_layers(2)
