"""What every frozen, prompted backbone shares: eval mode, precision, the query cache.

:class:`FrozenBackbone` is the common base of the encoder (:class:`PromptedBackbone`)
and the decoder (:class:`PromptedCausalLM`). A subclass sets ``self.model`` (the frozen
transformers model), ``self.config`` (a dataclass with ``precision``, ``query_cache`` and
``query_cache_path``) and ``self.modality``, calls :meth:`_init_frozen`, and defines
:meth:`identity`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import torch
from torch import nn

from .cache import QueryCache, describe, index_keys, tensor_keys, text_keys
from .inputs import Inputs, batch_size
from .precision import resolve_precision


class FrozenBackbone(nn.Module):
    """A frozen model in eval mode whose gradients flow only to the prompts fed to it."""

    model: nn.Module
    modality: str

    def _init_frozen(self) -> None:
        """Freeze the model, put it in eval mode and start an empty query cache."""
        self.model.requires_grad_(False)
        self.model.eval()
        self._cache = QueryCache()
        self._fingerprint: str | None = None

    def identity(self) -> dict:
        """What a saved method checks before reusing its prompts with this backbone."""
        raise NotImplementedError

    # ----------------------------------------------------------------- basics
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def train(self, mode: bool = True) -> FrozenBackbone:
        """Keep the frozen model in eval mode (dropout off) whatever the parent asks."""
        super().train(mode)
        self.model.eval()
        return self

    def query_width(self, layers: int = 1) -> int:
        """Width of ``query_features(..., layers=layers)``: n * D, n = min(layers, num_layers)."""
        return self.hidden_size * min(layers, self.num_layers)

    @property
    def precision(self) -> str:
        """The precision the model runs in on its current device (``auto`` resolved)."""
        return resolve_precision(self.config.precision, self.device)

    def set_precision(self, precision: str) -> None:
        """Run the model in ``precision`` from now on ("fp32", "bf16", "fp16", "auto").

        Cached query features computed in another precision are dropped: a cache holds
        features of one precision only.
        """
        resolve_precision(precision, self.device)  # refuses an unknown name
        if precision != self.config.precision:
            self.config = dataclasses.replace(self.config, precision=precision)
            self._cache.clear()
        if self._query_owner() is not self:  # a causal LM's query encoder runs in the LLM's precision
            self._query_owner().set_precision(precision)

    # ----------------------------------------------------------------- cache
    def _query_owner(self) -> FrozenBackbone:
        """The backbone whose features are the query, and so whose cache holds them: a
        causal LM's query encoder when it has one, else this backbone."""
        encoder = getattr(self, "query_encoder", None)  # set by PromptedCausalLM only
        return self if encoder is None else encoder

    def query_cache_info(self) -> dict[str, int]:
        """{"size", "hits", "misses"} of the query cache."""
        return self._query_owner()._cache.info()

    def clear_query_cache(self) -> None:
        self._query_owner()._cache.clear()

    def save_query_cache(self, path: str | os.PathLike | None = None) -> None:
        """Write the query cache to ``path`` (default ``config.query_cache_path``), safetensors."""
        path = path or self.config.query_cache_path
        if path is None:
            raise ValueError("path is required when config.query_cache_path is None")
        owner = self._query_owner()
        owner._cache.save(path, owner._cache_metadata())

    def load_query_cache(self, path: str | os.PathLike) -> int:
        """Merge a cache written by ``save_query_cache``; refuses one from another backbone."""
        owner = self._query_owner()
        return owner._cache.load(path, owner._cache_metadata())

    def weights_fingerprint(self) -> str:
        """blake2b digest of every model weight (memoised while the weights are frozen)."""
        trainable = any(p.requires_grad for p in self.model.parameters())  # e.g. a finetune copy
        if self._fingerprint is None or trainable:
            h = hashlib.blake2b(digest_size=16)
            for name, p in self.model.state_dict().items():
                h.update(name.encode())
                h.update(p.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
            self._fingerprint = None if trainable else h.hexdigest()
            return h.hexdigest()
        return self._fingerprint

    def _cache_metadata(self) -> dict[str, str]:
        return {"identity": describe(self.identity()), "weights": self.weights_fingerprint(),
                "precision": self.precision}

    def _keys(self, inputs: Inputs, indices: torch.Tensor | None) -> list[bytes]:
        """Cache keys of a batch: its explicit sample indices, else its content."""
        batch = batch_size(inputs)
        if indices is not None:
            indices = torch.as_tensor(indices)
            if indices.shape != (batch,) or indices.is_floating_point():
                raise ValueError(f"indices must be an integer tensor of shape ({batch},), got {tuple(indices.shape)}")
            return index_keys(indices)
        if self.modality == "text":
            return text_keys(inputs["input_ids"], inputs["attention_mask"])
        return tensor_keys(inputs)
