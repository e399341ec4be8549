"""Config options shared by the methods: each written once, with its default, meaning and check.

A method's config is a dataclass whose fields are :func:`option` fields. The options
several methods have (``lr``, ``prompt_init``, ``index``, ``mask_absent``, ``head`` ...)
are made here by one function each, so their help text and their check exist once; a
method states which of them it has and may give another default. ``MethodConfig``
runs every field's check in ``__post_init__``; ``cl-prompts methods --options NAME``
prints every field's help.

A function per option rather than a base class per group: the prompt methods share no
set of options that all of them use (coda_prompt has no ``prompt_init``, growing_pool no
``mask_absent``), and an option that a method silently ignored would be worse than a line
per option. The one group that several methods do share, the prompts chosen by key, is
``KeyedPromptConfig`` (methods/config.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from cl_prompts.checks import check_bool, check_choice, check_positive, is_int
from cl_prompts.methods.optimization import LR_SCHEDULES
from cl_prompts.pool.config import KEY_INITS, PROMPT_INITS

OPTIMIZERS = ("adam", "adamw", "sgd")
FEATURES = ("pooled", "prompt")
HEAD_KINDS = ("linear", "cosine")

# A check gets (name, value); it raises on a bad value and may return a normalised one.
Check = Callable[[str, Any], Any]


def option(default: Any, help: str, check: Check | None = None) -> Any:
    """A dataclass field with its help text and its check (kept in the field's metadata)."""
    return dataclasses.field(default=default, metadata={"help": help, "check": check})


def option_help(field: dataclasses.Field) -> str:
    return field.metadata.get("help", "")


def run_checks(config: Any) -> None:
    """Run every field's check; a check that returns a value replaces the field's value."""
    for field in dataclasses.fields(config):
        check = field.metadata.get("check")
        if check is not None:
            value = check(field.name, getattr(config, field.name))
            if value is not None:
                setattr(config, field.name, value)


# --- checks -------------------------------------------------------------------------------
positive = check_positive
positive_int = partial(check_positive, integer=True)
non_negative = partial(check_positive, allow_zero=True)
non_negative_int = partial(check_positive, integer=True, allow_zero=True)
_optional_positive = partial(check_positive, allow_none=True)
boolean = check_bool


def one_of(choices: Iterable[str]) -> Check:
    return partial(check_choice, choices=tuple(choices))


def layer_indices(*, allow_empty: bool = False) -> Check:
    return partial(as_layer_tuple, allow_empty=allow_empty)


def as_layer_tuple(name: str, value: Any, *, allow_empty: bool = False) -> tuple[int, ...]:
    """Layer indices as a tuple of distinct ints >= 0 (JSON lists read back equal)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a sequence of ints, got {value!r}")
    out = tuple(value)
    for v in out:
        if not is_int(v) or v < 0:
            raise ValueError(f"{name} must hold ints >= 0, got {list(out)}")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must not repeat a layer, got {list(out)}")
    if not out and not allow_empty:
        raise ValueError(f"{name} must not be empty")
    return out


# --- the shared options -------------------------------------------------------------------
def lr(default: float) -> Any:
    return option(default, "learning rate of the optimizer built for each experience", positive)


def weight_decay(default: float = 0.0) -> Any:
    return option(default, "decoupled (adamw) or L2 (adam, sgd) weight decay", non_negative)


def optimizer(default: str = "adam") -> Any:
    return option(default, "'adam', 'adamw' or 'sgd' (momentum 0.9)", one_of(OPTIMIZERS))


def grad_clip(default: float | None = None) -> Any:
    return option(default, "clip the total gradient norm of the trained tensors to this before each "
                           "step (None: no clipping; the official L2P/DualPrompt code clips at 1.0)",
                  _optional_positive)


def lr_schedule(default: str = "constant") -> Any:
    return option(default, "learning rate within each experience: 'constant' or 'cosine' (decays to 0 "
                           "over the experience's steps)", one_of(LR_SCHEDULES))


def prompt_length(default: int, help: str = "tokens per prompt") -> Any:
    return option(default, help, positive_int)


def prompt_init(default: str = "uniform") -> Any:
    return option(default, "initialisation of new prompts and keys: 'uniform' U(-s, s) or "
                           "'normal' N(0, s^2), s = prompt_init_scale", one_of(PROMPT_INITS))


def prompt_init_scale(default: float = 1.0) -> Any:
    return option(default, "s of prompt_init", positive)


def key_init(default: str = "as_prompts") -> Any:
    return option(default, "initialisation of new keys: 'as_prompts' (prompt_init) or 'jax_uniform' "
                           "U[0, 0.01) (the official JAX code's)", one_of(KEY_INITS))


def head_lr(default: float | None = None) -> Any:
    return option(default, "learning rate of the classifier head (None: lr)", _optional_positive)


def index(default: str = "flat") -> Any:
    return option(default, "the key index: 'flat' (exact), 'torch' (exact, no faiss) or a faiss "
                           "factory string such as 'HNSW32'", _non_empty_string)


def feature(default: str) -> Any:
    return option(default, "what the classifier reads: 'pooled' (the backbone's pooling of the "
                           "real tokens) or 'prompt' (the mean of the prompt positions, as L2P)",
                  one_of(FEATURES))


def mask_absent(default: bool = True) -> Any:
    return option(default, "while training, mask the logits of classes outside the current "
                           "experience (their head rows then get no gradient)", boolean)


def pull_coef(default: float) -> Any:
    return option(default, "weight of the loss that pulls the selected keys to the query", non_negative)


def head(default: str) -> Any:
    return option(default, "the classifier head: 'linear' or 'cosine'", one_of(HEAD_KINDS))


def head_scale(default: float = 16.0) -> Any:
    return option(default, "temperature of the cosine head", positive)


def feature_layers(default: int) -> Any:
    return option(default, "the frozen feature is the pooled outputs of the last `layers` layers, "
                           "each at unit length, concatenated", positive_int)


def projection_dim(default: int) -> Any:
    return option(default, "random ReLU features of the ridge classifier (memory: a float64 "
                           "(M, M) Gram matrix)", positive_int)


def normalize(default: bool = True) -> Any:
    return option(default, "unit-normalise the query feature first", boolean)


def _non_empty_string(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"{name} must be a non-empty string, got {value!r}")
