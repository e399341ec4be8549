"""PromptedCausalLM: a frozen decoder-only language model steered by soft prompts.

Layout of one prompted pass: ``[input prompts (P), templated input tokens (T)]``. The
prompts come first whatever the padding side; padding columns are masked out and
position ids count only the prompts and real tokens (``cumsum(mask) - 1``), so a text
gets the same outputs with left or right padding. Key/value prefixes per layer go
through the attention registry (:mod:`cl_prompts.backbones.attention`); their width is
``prefix_size`` (the keys' width: less than the hidden size under grouped-query attention).

Scoring, the training loss and generation live in :mod:`.causal_scoring`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

from cl_prompts.checks import check_positive

from .attention import prefixes_set, record_attention_modules
from .backbone import BackboneOutput
from .cache import layer_keys
from .causal_config import CausalLMConfig, check_causal_family
from .causal_query import block_outputs, decoder_blocks, pool, resolve_query_layer
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
from .templates import (
    build_template,
    encode_answers,
    encode_inputs,
    head_ids,
    stop_token_ids,
    text_budget,
)

Answers = list[str] | Mapping[str, torch.Tensor]
QUERY_PREFIX = "query_"  # the query encoder's token ids ride along in the input dict under these names


def query_inputs(inputs: Inputs) -> dict[str, torch.Tensor]:
    """The query encoder's {"input_ids", "attention_mask"} (B, T_q) inside a causal LM's input dict."""
    if not isinstance(inputs, Mapping) or QUERY_PREFIX + "input_ids" not in inputs:
        raise ValueError("this causal LM takes its query from a query encoder: its inputs need the "
                         "'query_input_ids' and 'query_attention_mask' that tokenize() adds")
    return {k[len(QUERY_PREFIX):]: v for k, v in inputs.items() if k.startswith(QUERY_PREFIX)}


def positions_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """(B, S) 0/1 mask -> (B, S) position ids counting real columns only (padding: 0)."""
    return (mask.cumsum(dim=-1) - 1).clamp_min(0)


class PromptedCausalLM(FrozenBackbone):
    """Frozen causal LM with input prompts and key/value prefixes; build it with ``load_causal_lm``.

    model: a transformers ``*ForCausalLM`` whose ``config._attn_implementation`` is
        ``attention.ATTN_IMPLEMENTATION``.
    config: the :class:`CausalLMConfig` it was loaded from.
    tokenizer: its tokenizer, with a padding token.
    query_encoder: a frozen text encoder whose features are the query (see
        ``CausalLMConfig.query_encoder``), or None for the LLM's own.
    """

    modality = "text"
    causal = True  # methods that answer by generation need one (encoders have no ``causal``)

    def __init__(self, model: nn.Module, config: CausalLMConfig, tokenizer,
                 query_encoder: FrozenBackbone | None = None) -> None:
        super().__init__()
        if not isinstance(config, CausalLMConfig):
            raise TypeError(f"config must be a CausalLMConfig, got {type(config).__name__}")
        self.family = check_causal_family(model.config.model_type)
        if tokenizer is None or tokenizer.pad_token_id is None:
            raise ValueError("tokenizer must be given and have a pad token (e.g. its eos token)")
        self.config, self.model, self.tokenizer = config, model, tokenizer
        if (query_encoder is None) != (config.query_encoder is None):
            raise ValueError("give query_encoder exactly when config.query_encoder names one")
        if query_encoder is not None and (getattr(query_encoder, "causal", False) or query_encoder.modality != "text"):
            raise ValueError(f"query_encoder must be a text encoder (BERT family), got {config.query_encoder!r}")
        self.query_encoder = query_encoder
        cfg = model.config
        self.hidden_size = int(cfg.hidden_size)
        self.num_layers = int(cfg.num_hidden_layers)
        self.num_heads = int(cfg.num_attention_heads)
        head_dim = int(getattr(cfg, "head_dim", None) or self.hidden_size // self.num_heads)
        self.num_kv_heads = int(getattr(cfg, "num_key_value_heads", None) or self.num_heads)
        self.prefix_size = self.num_kv_heads * head_dim
        self.query_layer = resolve_query_layer(config.query_layer, self.num_layers, config.name_or_path)
        if config.max_length + config.answer_max_length > self.max_tokens:
            raise ValueError(f"max_length + answer_max_length = {config.max_length + config.answer_max_length} is "
                             f"more than the {self.max_tokens} token positions of {config.name_or_path}")
        self.template = build_template(tokenizer, config.template, config.instruction)
        self.stop_ids = stop_token_ids(self.template, tokenizer)
        self.head_ids = torch.tensor(head_ids(self.template, tokenizer), dtype=torch.long)  # (H,)
        self._init_frozen()
        self._attention: list[nn.Module] = []
        self._attention = self._find_attention_modules()
        self._blocks = list(decoder_blocks(self.decoder, self.num_layers))  # a list: not registered again
        if config.query_cache_path and os.path.exists(config.query_cache_path):
            self.load_query_cache(config.query_cache_path)

    # ----------------------------------------------------------------- parts
    @property
    def decoder(self) -> nn.Module:
        """The transformer without its LM head (``LlamaModel``, ``GPT2Model``, ...)."""
        return self.model.base_model

    @property
    def lm_head(self) -> nn.Module:
        return self.model.get_output_embeddings()

    @property
    def max_tokens(self) -> int:
        cfg = self.model.config
        return int(getattr(cfg, "max_position_embeddings", None) or cfg.n_positions)

    def identity(self) -> dict:
        """What a saved method checks before reusing its prompts with this backbone."""
        return {
            "name_or_path": self.config.name_or_path,
            "model_type": self.model.config.model_type,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "pooling": self.config.query_pooling,
            "query_layer": self.query_layer,
            "template": self.template.kind,
            "instruction": self.config.instruction,
            "query_encoder": None if self.query_encoder is None else self.query_encoder.identity(),
        }

    # ----------------------------------------------------------------- text
    @property
    def text_max_length(self) -> int:
        """Tokens of an input's text that fit beside the template in ``max_length`` (the rest is cut)."""
        return text_budget(self.template, self.tokenizer, self.config.max_length)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Templated inputs {"input_ids", "attention_mask"} (N, max_length), padded on ``padding_side``;
        with a query encoder also its tokens of the raw texts {"query_input_ids", "query_attention_mask"}."""
        out = encode_inputs(self.template, self.tokenizer, texts, self.config.max_length, self.config.padding_side)
        if self.query_encoder is not None:
            enc = self.query_encoder.tokenize(texts)
            out.update({QUERY_PREFIX + k: enc[k] for k in ("input_ids", "attention_mask")})
        return out

    def query_width(self, layers: int = 1) -> int:
        """Width of :meth:`query_features` with ``layers``."""
        if self.query_encoder is not None:
            return self.query_encoder.query_width(layers)
        return super().query_width(layers)

    def tokenize_answers(self, answers: list[str]) -> dict[str, torch.Tensor]:
        """Answers with their end marker {"input_ids", "attention_mask"} (A, La), right-padded."""
        return encode_answers(self.template, self.tokenizer, answers, self.config.answer_max_length)

    def decode(self, ids: torch.Tensor) -> list[str]:
        """(B, L) generated ids -> texts (special tokens dropped, whitespace stripped)."""
        return [t.strip() for t in self.tokenizer.batch_decode(ids.tolist(), skip_special_tokens=True)]

    # ----------------------------------------------------------------- passes
    def prompted_embeddings(
        self, inputs: Inputs, input_prompts: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """[prompts, token embeddings] (B, P + T, D) and their 0/1 mask (B, P + T)."""
        model_inputs, mask = prepare(inputs, "text", self.model.dtype, trim_leading=True)  # (B, T), padding trimmed
        embeds = self.model.get_input_embeddings()(model_inputs["input_ids"])  # (B, T, D)
        prompts = check_input_prompts(input_prompts, batch_size(inputs), self.hidden_size)
        if prompts is not None:
            embeds = torch.cat([prompts.to(embeds.dtype), embeds], dim=1)
            mask = torch.cat([mask.new_ones(prompts.shape[:2]), mask], dim=1)
        return embeds, mask

    def check_prefixes(self, prefix_prompts: Mapping[int, torch.Tensor] | None, batch: int):
        """{layer: (B|1, 2, P, prefix_size)} -> {layer: (B, 2, P, prefix_size)}; None when empty."""
        return check_prefixes(prefix_prompts, batch, self.prefix_size, self.num_layers)

    def run_decoder(self, embeds: torch.Tensor, mask: torch.Tensor, prefixes=None, cache=None,
                    positions: torch.Tensor | None = None, hidden_states: bool = False):
        """One pass of the decoder (no LM head) under the configured precision.

        embeds: (B, S, D) new columns; mask: (B, C + S) covering the cached columns too;
        prefixes: checked {layer: (B, 2, P, prefix_size)}. Returns transformers' output
        (``last_hidden_state``, ``cache``, ``hidden_states``).
        """
        if positions is None:
            positions = positions_from_mask(mask)[:, -embeds.shape[1]:]
        with prefixes_set(self._attention, prefixes), autocast(self.config.precision, self.device):
            return self.decoder(inputs_embeds=embeds, attention_mask=mask, position_ids=positions,
                                cache=cache, use_cache=cache is not None, output_hidden_states=hidden_states)

    def token_log_probs(self, hidden: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log p(target) (N, L) from the hidden states (N, L, D) that predict them; 0 where ``mask`` is 0.

        The LM head runs only at the masked-in positions (its vocabulary-wide output is
        the largest tensor of a pass).
        """
        keep = mask.bool()
        with autocast(self.config.precision, self.device):
            logits = self.lm_head(hidden[keep])  # (M, V)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        picked = log_probs.gather(1, targets[keep][:, None]).squeeze(1)  # (M,)
        out = torch.zeros(targets.shape, dtype=picked.dtype, device=picked.device)
        return out.masked_scatter(keep, picked)

    def forward(self, inputs: Inputs, input_prompts: torch.Tensor | None = None,
                prefix_prompts: Mapping[int, torch.Tensor] | None = None) -> BackboneOutput:
        """Prompted features; gradients flow to the prompts only.

        inputs: {"input_ids", "attention_mask"} (B, T), from :meth:`tokenize`.
        input_prompts: (B|1, P, D) in front of the input embeddings.
        prefix_prompts: {layer: (B|1, 2, P, prefix_size)} key/value prefixes.
        Returns ``pooled`` (B, D) by ``query_pooling`` over the real tokens of the last
        hidden state, ``prompt_pooled`` (B, D) or None, ``hidden`` (B, P + T, D) and its ``mask``.
        """
        embeds, mask = self.prompted_embeddings(inputs, input_prompts)
        prefixes = self.check_prefixes(prefix_prompts, embeds.shape[0])
        hidden = self.run_decoder(embeds, mask, prefixes).last_hidden_state.float()  # (B, P + T, D)
        num_prompts = 0 if input_prompts is None else input_prompts.shape[1]
        real = mask.clone()
        real[:, :num_prompts] = 0
        prompt_pooled = hidden[:, :num_prompts].mean(dim=1) if num_prompts else None
        return BackboneOutput(self._pool(hidden, real), prompt_pooled, hidden, mask)

    @torch.no_grad()
    def query_features(self, inputs: Inputs, indices: torch.Tensor | None = None,
                       use_cache: bool | None = None, layers: int = 1) -> torch.Tensor:
        """Frozen, prompt-free features (B, n * D) pooled by ``query_pooling``, no gradient.

        layers: n = min(layers, query depth) hidden states ending at ``query_layer`` (None:
        the final, normed one), each pooled, concatenated oldest first; the closed-form
        methods (``ncm``, ``ranpac``) read several as they do on encoders.
        Cached as the encoder's are (keys: ``indices`` or the non-padding token ids).
        With a query encoder: that encoder's features (B, n * D_enc) of the input's
        ``query_input_ids``, cached by the encoder.
        """
        check_positive("layers", layers, integer=True)
        if self.query_encoder is not None:
            return self.query_encoder.query_features(query_inputs(inputs), indices, use_cache, layers)
        use_cache = self.config.query_cache if use_cache is None else use_cache
        if not use_cache:
            return self._query_pass(inputs, layers)
        keys = self._keys(inputs, indices)
        if min(layers, self.num_layers) > 1:  # other rows than the one-layer features
            keys = layer_keys(keys, min(layers, self.num_layers))
        rows = [self._cache.get(k) for k in keys]
        missing = [i for i, r in enumerate(rows) if r is None]
        if missing:
            fresh = self._query_pass(index_rows(inputs, torch.tensor(missing, device=batch_device(inputs))), layers)
            for j, i in enumerate(missing):
                self._cache.put(keys[i], fresh[j])
                rows[i] = fresh[j]
        return torch.stack([r.to(batch_device(inputs)) for r in rows])  # (B, D)

    # ----------------------------------------------------------------- scoring (see causal_scoring)
    def answer_log_likelihood(self, inputs: Inputs, input_prompts: torch.Tensor | None, answers: Answers,
                              prefix_prompts: Mapping[int, torch.Tensor] | None = None) -> torch.Tensor:
        """(B, A) mean log-probability per token of each answer after each prompted input."""
        from .causal_scoring import answer_log_likelihood

        return answer_log_likelihood(self, inputs, input_prompts, answers, prefix_prompts)

    def answer_loss(self, inputs: Inputs, input_prompts: torch.Tensor | None, answers: Answers,
                    prefix_prompts: Mapping[int, torch.Tensor] | None = None) -> torch.Tensor:
        """Scalar cross-entropy of each input's own answer (B answers), answer tokens only."""
        from .causal_scoring import answer_loss

        return answer_loss(self, inputs, input_prompts, answers, prefix_prompts)

    @torch.no_grad()
    def generate(self, inputs: Inputs | list[str], input_prompts: torch.Tensor | None = None,
                 prefix_prompts: Mapping[int, torch.Tensor] | None = None, max_new_tokens: int = 16) -> list[str]:
        """Greedy answers (B texts) with the prompts in place; ``inputs`` may be raw texts."""
        from .causal_scoring import generate

        if isinstance(inputs, list):
            inputs = {k: v.to(self.device) for k, v in self.tokenize(inputs).items()}
        return generate(self, inputs, input_prompts, prefix_prompts, max_new_tokens)

    # ----------------------------------------------------------------- helpers
    def _query_pass(self, inputs: Inputs, layers: int = 1) -> torch.Tensor:
        """(B, n * D): the pooled hidden states of the n layers ending at ``query_layer``; the
        pass stops after the last block it reads."""
        embeds, mask = self.prompted_embeddings(inputs, None)
        layer, n = self.query_layer, min(layers, self.num_layers)  # the encoders' rule: n * D wide
        end = self.num_layers + 1 if layer is None else layer + 1  # hidden states end - n .. end - 1
        if end < n:
            raise ValueError(f"layers={layers} needs {n} hidden states up to query_layer={layer}, there are {end}")
        if layer is not None and end - n >= 1:  # block outputs only: no need for the rest of the model
            picked = block_outputs(lambda: self.run_decoder(embeds, mask), self._blocks, end - n, end - 1)
        elif layer is None and n == 1:
            picked = [self.run_decoder(embeds, mask).last_hidden_state]
        else:
            out = self.run_decoder(embeds, mask, hidden_states=True)
            states = [*out.hidden_states[:-1], out.last_hidden_state]  # the last after the final norm
            picked = states[end - n:end]
        return torch.cat([self._pool(h.float(), mask) for h in picked], dim=-1)

    def _pool(self, hidden: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """(B, S, D), (B, S) -> (B, D) by ``query_pooling`` (:func:`.causal_query.pool`)."""
        return pool(hidden, real, self.config.query_pooling, len(self.head_ids))

    def _find_attention_modules(self) -> list[nn.Module]:
        """Attention modules in layer order, found by a one-sample probe pass."""
        ids = torch.tensor([[self.tokenizer.pad_token_id] * 2], device=self.device)
        with torch.no_grad(), record_attention_modules() as seen:
            self.run_decoder(self.model.get_input_embeddings()(ids), torch.ones_like(ids))
        if len(seen) != self.num_layers:
            raise ValueError(
                f"expected {self.num_layers} attention calls from {self.model.config.model_type}, saw {len(seen)}; "
                "this model does not route attention through transformers' AttentionInterface"
            )
        return seen
