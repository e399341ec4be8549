"""``coda_prompt``: attention-weighted sums of prompt components, new components per task."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cl_prompts.methods.base import ContinualMethod
from cl_prompts.methods.coda_prompt.config import CodaPromptConfig
from cl_prompts.methods.heads import GrowingHead
from cl_prompts.methods.prompts import SegmentedParameter, check_layers, gram_schmidt, pool_contents
from cl_prompts.methods.registry import register
from cl_prompts.methods.routing import Routing
from cl_prompts.pool import PoolConfig, PromptPool

# Components reported by ``routing`` (CODA-Prompt weights all of them; these weigh most).
ROUTING_TOP = 5


def ortho_penalty(x: Tensor) -> Tensor:
    """||X X^T - I||^2 (mean) over the rows of x (N, ...), flattened."""
    x = x.reshape(x.shape[0], -1)
    return ((x @ x.T - torch.eye(x.shape[0], device=x.device, dtype=x.dtype)) ** 2).mean()


@register
class CodaPrompt(ContinualMethod):
    """One PromptPool per prompted layer holds the components (prompt + key, task segments);
    the attention vectors sit beside it in a :class:`SegmentedParameter`. Every component is
    used (soft weights), so there is no top-k search: selection is the weighting itself.
    """

    name = "coda_prompt"
    config_class = CodaPromptConfig
    renews_parameters = True  # each experience's components are a new current segment

    def __init__(self, backbone: Any, num_classes: int, config: CodaPromptConfig):
        super().__init__(backbone, num_classes, config)
        c = config
        check_layers("layers", c.layers, backbone.num_layers)
        d = self.hidden_size
        self.pools = nn.ModuleList(
            PromptPool(PoolConfig(embed_dim=d, prompt_length=c.prompt_length, top_k=1, index="torch"))
            for _ in c.layers
        )
        self.attention = nn.ModuleList(SegmentedParameter((d,)) for _ in c.layers)
        self.head = GrowingHead(d, num_classes)

    def _grow(self, experience: int, classes: list[int]) -> None:
        n, d, lp = self.config.components_per_task, self.hidden_size, self.config.prompt_length
        for pool, attn in zip(self.pools, self.attention, strict=True):
            if pool.size:
                old_p, old_k = pool.lookup(torch.arange(pool.size))
            else:
                old_p, old_k = torch.empty(0, lp, d), torch.empty(0, d)
            # Gram-Schmidt: new components orthogonal to every earlier one (the paper's init)
            keys = gram_schmidt(old_k.detach().cpu(), n)
            prompts = gram_schmidt(old_p.detach().cpu().reshape(-1, lp * d), n).reshape(n, lp, d)
            pool.add_task(n, keys=keys, prompts=prompts)  # freezes the previous task's components
            attn.add(gram_schmidt(attn.all().detach().cpu(), n))
        self.head.grow(classes, train_only_new=self.config.mask_absent)

    def _freeze(self, experience: int) -> None:
        for pool, attn in zip(self.pools, self.attention, strict=True):
            pool.freeze()
            attn.freeze()
        self.head.set_trainable([])

    def frozen_query_layers(self) -> int:
        return 1  # its query: the last layer's pooled feature

    def trainable_parameters(self) -> list[nn.Parameter]:
        params: list[nn.Parameter] = []
        for pool, attn in zip(self.pools, self.attention, strict=True):
            params += pool.trainable_parameters() + attn.trainable_parameters()
        return params + self.head.trainable_parameters()

    def _components(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        pool = self.pools[i]
        prompts, keys = pool.lookup(torch.arange(pool.size, device=self.seen_mask.device))
        return prompts, keys, self.attention[i].all()  # (M, Lp, D), (M, D), (M, D)

    def component_weights(self, query: Tensor, i: int) -> Tensor:
        """(B, M) weights ``cos(query * A_m, K_m)`` of layer ``self.config.layers[i]``."""
        _, keys, attn = self._components(i)
        aq = query[:, None, :] * attn[None]  # (B, M, D)
        return (F.normalize(aq, dim=-1) * F.normalize(keys, dim=-1)[None]).sum(-1)

    def _prefixes(self, inputs: Any) -> dict[int, Tensor]:
        query = self.backbone.query_features(inputs)  # (B, D) frozen
        half = self.config.prompt_length // 2
        out = {}
        for i, layer in enumerate(self.config.layers):
            prompts, _, _ = self._components(i)
            p = torch.einsum("bm,mld->bld", self.component_weights(query, i), prompts)  # (B, Lp, D)
            out[layer] = torch.stack([p[:, :half], p[:, half:]], dim=1)  # (B, 2, Lp / 2, D)
        return out

    def _train_forward(self, inputs: Any) -> tuple[Tensor, list[Tensor]]:
        logits = self._logits(inputs)
        terms = []
        if self.config.ortho_mu > 0:  # one term per prompted layer
            for i in range(len(self.config.layers)):
                prompts, keys, attn = self._components(i)
                terms.append(self.config.ortho_mu * (
                    ortho_penalty(prompts) + ortho_penalty(keys) + ortho_penalty(attn)
                ))
        return logits, terms

    @torch.no_grad()
    def routing(self, inputs: Any) -> Routing:
        """The components weighted most at the first prompted layer (every one is used, weighted)."""
        query = self.backbone.query_features(inputs)  # (B, D)
        weights = self.component_weights(query, 0)  # (B, M)
        scores, ids = weights.topk(min(ROUTING_TOP, weights.shape[1]), dim=1)
        return Routing(experience=torch.full_like(ids[:, 0], -1), prompt_ids=ids, key_scores=scores,
                       queries=query)

    def routing_keys(self) -> tuple[Tensor, Tensor]:
        """The first prompted layer's component keys and the experience that added each (a
        component's weight is ``cos(query * attention, key)``: the query is scaled per component)."""
        _, keys, tasks = pool_contents(self.pools[0])
        return keys, tasks

    def _logits(self, inputs: Any) -> Tensor:
        return self.head(self.backbone(inputs, prefix_prompts=self._prefixes(inputs)).pooled)
