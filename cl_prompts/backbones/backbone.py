"""PromptedBackbone: a frozen transformers encoder steered by input or prefix prompts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from cl_prompts.checks import is_int
from cl_prompts.choices import ENCODER_POOLINGS

from .attention import prefixes_set, record_attention_modules
from .cache import layer_keys
from .config import BackboneConfig, check_family
from .frozen import FrozenBackbone
from .inputs import (
    Inputs,
    batch_device,
    batch_size,
    check_input_prompts,
    check_prefixes,
    index_rows,
    prepare,
)
from .precision import autocast


@dataclass
class BackboneOutput:
    """Features of one prompted pass.

    pooled: (B, D) configured pooling over the real (non-prompt, non-padding) tokens.
    prompt_pooled: (B, D) mean over the input-prompt positions; None without input prompts.
    hidden: (B, P + T, D) last hidden states laid out as [leading special token(s),
        input prompts (P), the other tokens/patches]; T counts the input's tokens after
        all-padding columns were trimmed.
    mask: (B, P + T) long, 1 where ``hidden`` holds a prompt or a real token.
    layer_pooled: (B, n, D) the same pooling over the outputs of the last ``n`` layers
        (oldest first; the last row is ``pooled``) when the pass asked for ``layers=n``.
    """

    pooled: torch.Tensor
    prompt_pooled: torch.Tensor | None
    hidden: torch.Tensor
    mask: torch.Tensor
    layer_pooled: torch.Tensor | None = None

    def layer_features(self) -> torch.Tensor:
        """(B, n * D): each layer's pooled feature at unit length, concatenated oldest first.

        Unit length because the layers' scales differ (a deep layer would dominate); with
        one layer this is ``pooled`` itself, unscaled.
        """
        if self.layer_pooled is None or self.layer_pooled.shape[1] == 1:
            return self.pooled
        return torch.nn.functional.normalize(self.layer_pooled, dim=-1).flatten(1)


class PromptedBackbone(FrozenBackbone):
    """Frozen encoder with prompt injection; build it with ``load_backbone``.

    model: a transformers base model (BertModel, ViTModel, ...) whose
        ``config._attn_implementation`` is ``attention.ATTN_IMPLEMENTATION``.
    config: the :class:`BackboneConfig` it was loaded from (pooling already resolved).
    tokenizer: required for text models.
    """

    def __init__(self, model: nn.Module, config: BackboneConfig, tokenizer=None) -> None:
        super().__init__()
        if config.pooling not in ENCODER_POOLINGS:
            raise ValueError(f"an encoder pools by 'mean' or 'cls' (or 'auto', resolved before construction), "
                             f"got pooling={config.pooling!r}; 'text' and 'last' are for causal LMs")
        self.family = check_family(model.config.model_type)
        self.config = config
        self.model = model
        self.tokenizer = tokenizer
        self.modality = self.family.modality
        if self.modality == "text" and tokenizer is None:
            raise ValueError("tokenizer is required for a text backbone")
        cfg = model.config
        self.hidden_size = int(cfg.hidden_size if hasattr(cfg, "hidden_size") else cfg.dim)
        self.num_layers = int(getattr(cfg, "num_hidden_layers", getattr(cfg, "n_layers", 0)))
        self.num_heads = int(getattr(cfg, "num_attention_heads", getattr(cfg, "n_heads", 0)))
        if self.modality == "text" and config.max_length > self.max_tokens:
            raise ValueError(
                f"max_length={config.max_length} is more than the {self.max_tokens} token positions of "
                f"{config.name_or_path}; use --max-length {self.max_tokens} or less"
            )
        self._init_frozen()
        self._attention: list[nn.Module] = []
        self._attention = self._find_attention_modules()
        if config.query_cache_path and os.path.exists(config.query_cache_path):
            self.load_query_cache(config.query_cache_path)

    # ----------------------------------------------------------------- basics
    @property
    def pooling(self) -> str:
        return self.config.pooling

    @property
    def max_tokens(self) -> int:
        """Tokens per text the model has positions for (RoBERTa's start after the padding id)."""
        cfg = self.model.config
        offset = cfg.pad_token_id + 1 if cfg.model_type in ("roberta", "xlm-roberta") else 0
        return int(cfg.max_position_embeddings) - offset

    def identity(self) -> dict:
        """What a saved method checks before reusing its prompts with this backbone."""
        return {
            "name_or_path": self.config.name_or_path,
            "model_type": self.model.config.model_type,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "pooling": self.pooling,
        }

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Text only: {"input_ids", "attention_mask"} LongTensors (N, max_length)."""
        if self.modality != "text":
            raise ValueError(f"tokenize is for text backbones; this one is {self.modality}")
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be a list of str")
        enc = self.tokenizer(
            list(texts),
            padding="max_length",
            truncation=True,
            max_length=self.config.max_length,
            return_tensors="pt",
        )
        return {"input_ids": enc["input_ids"].long(), "attention_mask": enc["attention_mask"].long()}

    # ----------------------------------------------------------------- forward
    def forward(
        self,
        inputs: Inputs,
        input_prompts: torch.Tensor | None = None,
        prefix_prompts: Mapping[int, torch.Tensor] | None = None,
        layers: int = 1,
    ) -> BackboneOutput:
        """Run the frozen model with prompts; gradients flow to the prompts only.

        inputs: {"input_ids", "attention_mask"} (B, T) or pixel values (B, 3, H, W).
        input_prompts: (B, P, D) inserted after the leading special token(s).
        prefix_prompts: {layer: (B, 2, P, D)} key/value prefixes of that layer's attention.
        layers: pool the outputs of the last ``layers`` layers too (``layer_pooled``);
            more than the model has means all of them.
        """
        if not is_int(layers) or layers < 1:
            raise ValueError(f"layers must be a positive int, got {layers!r}")
        layers = min(layers, self.num_layers)
        model_inputs, mask = prepare(inputs, self.modality, self.model.dtype)  # mask: (B, T); None: vision
        batch = batch_size(inputs)
        input_prompts = check_input_prompts(input_prompts, batch, self.hidden_size)
        prefix_prompts = check_prefixes(prefix_prompts, batch, self.hidden_size, self.num_layers)
        num_prompts = 0 if input_prompts is None else input_prompts.shape[1]
        s = self.family.num_special
        if num_prompts and mask is not None:
            ones = mask.new_ones(batch, num_prompts)
            mask = torch.cat([mask[:, :s], ones, mask[:, s:]], dim=1)  # (B, P + T)
            model_inputs["attention_mask"] = mask
        with prefixes_set(self._attention, prefix_prompts), self._inserted(input_prompts), \
                autocast(self.config.precision, self.device):
            out = self.model(**model_inputs, output_hidden_states=layers > 1)
        hidden = out.last_hidden_state.float()  # (B, P + T, D); fp32 whatever the precision
        if mask is None:  # vision: every token and prompt is real
            mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
        real = mask.clone()
        real[:, s : s + num_prompts] = 0  # real tokens: no prompts, no padding
        pooled = self._pool(hidden, real)
        prompt_pooled = None
        if num_prompts:
            prompt_pooled = hidden[:, s : s + num_prompts].mean(dim=1)  # (B, D)
        layer_pooled = pooled[:, None]  # (B, 1, D)
        if layers > 1:  # hidden_states[-1] can precede a final norm (ViT): keep last_hidden_state
            earlier = [self._pool(h.float(), real) for h in out.hidden_states[-layers:-1]]
            layer_pooled = torch.stack([*earlier, pooled], dim=1)  # (B, n, D)
        return BackboneOutput(pooled, prompt_pooled, hidden, mask, layer_pooled)

    @torch.no_grad()
    def query_features(
        self,
        inputs: Inputs,
        indices: torch.Tensor | None = None,
        use_cache: bool | None = None,
        layers: int = 1,
    ) -> torch.Tensor:
        """Frozen, prompt-free pooled features (B, D), without gradient.

        layers: with more than one, the last ``layers`` layers' features
            (:meth:`BackboneOutput.layer_features`): (B, n * D), n = min(layers, num_layers).

        use_cache: None follows the config: text inputs are cached when
            ``config.query_cache`` is on, vision inputs only when ``query_cache_vision`` is
            on too (augmented images must bypass the cache). False always bypasses it
            (e.g. an augmented batch); True always uses it.
        indices: (B,) sample indices used as cache keys (the caller guarantees one index
            = one fixed sample); without them the key is the sample content (text: its
            non-padding token ids; vision: its pixel values).
        """
        if use_cache is None:
            use_cache = self._cache_enabled()
        if not use_cache:
            return self.forward(inputs, layers=layers).layer_features()
        keys = self._keys(inputs, indices)
        if min(layers, self.num_layers) > 1:  # other rows than the one-layer features
            keys = layer_keys(keys, min(layers, self.num_layers))
        rows = [self._cache.get(k) for k in keys]
        missing = [i for i, r in enumerate(rows) if r is None]
        if missing:
            sel = torch.tensor(missing, device=batch_device(inputs))
            sub = index_rows(inputs, sel)
            fresh = self.forward(sub, layers=layers).layer_features()  # (M, n * D)
            for j, i in enumerate(missing):
                self._cache.put(keys[i], fresh[j])
                rows[i] = fresh[j]
        device = batch_device(inputs)
        return torch.stack([r.to(device) for r in rows])  # (B, D)

    # ----------------------------------------------------------------- helpers
    def _cache_enabled(self) -> bool:
        if not self.config.query_cache:
            return False
        return self.modality == "text" or self.config.query_cache_vision

    @contextmanager
    def _inserted(self, prompts: torch.Tensor | None):
        """Insert (B, P, D) prompts after the special tokens of the embedding output."""
        if prompts is None:
            yield
            return
        s = self.family.num_special

        def hook(_module, _args, out):
            out = out[0] if isinstance(out, tuple) else out  # (B, T, D)
            return torch.cat([out[:, :s], prompts.to(out.dtype), out[:, s:]], dim=1)

        handle = self.model.embeddings.register_forward_hook(hook)
        try:
            yield
        finally:
            handle.remove()

    def _pool(self, hidden: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """(B, S, D), (B, S) -> (B, D)."""
        if self.pooling == "cls":
            return hidden[:, 0]
        weights = real.to(hidden.dtype).unsqueeze(-1)  # (B, S, 1)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)

    def _find_attention_modules(self) -> list[nn.Module]:
        """Attention modules in layer order, found by a one-sample probe pass."""
        if self.modality == "text":
            ids = torch.tensor([[self.tokenizer.cls_token_id or 0, self.tokenizer.sep_token_id or 0]])
            probe: Inputs = {"input_ids": ids.to(self.device), "attention_mask": torch.ones_like(ids).to(self.device)}
        else:
            size = self.model.config.image_size
            probe = torch.zeros(1, self.model.config.num_channels, size, size, device=self.device)
        with torch.no_grad(), record_attention_modules() as seen:
            self.forward(probe)
        if len(seen) != self.num_layers:
            raise ValueError(
                f"expected {self.num_layers} attention calls from {self.model.config.model_type}, saw {len(seen)}; "
                "this model does not route attention through transformers' AttentionInterface"
            )
        return seen
