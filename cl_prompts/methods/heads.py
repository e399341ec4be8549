"""Classifier heads that grow with the classes seen.

The head is stored as one block of rows per experience (the classes it introduced), so
that "the current experience's rows" is a whole tensor: the optimizer can be given
exactly the trainable blocks and old blocks can be frozen (``requires_grad=False``)
without touching anything else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cl_prompts.checks import check_choice
from cl_prompts.methods.options import HEAD_KINDS


class GrowingHead(nn.Module):
    """A linear or cosine classifier over ``num_classes`` global class ids, grown per experience.

    Args:
        in_features: feature width D.
        num_classes: total number of classes C (logits are always (B, C)).
        kind: ``"linear"`` (``x W^T + b``) or ``"cosine"`` (``scale * cos(x, w)``, no bias).
        scale: the temperature of the cosine head.
    """

    def __init__(self, in_features: int, num_classes: int, kind: str = "linear", scale: float = 16.0):
        super().__init__()
        check_choice("kind", kind, HEAD_KINDS)
        self.in_features = int(in_features)
        self.num_classes = int(num_classes)
        self.kind = kind
        self.scale = float(scale)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.register_buffer("class_to_block", torch.full((num_classes,), -1, dtype=torch.long))

    @property
    def num_blocks(self) -> int:
        return len(self.weights)

    def add_block(self, classes: Sequence[int]) -> int | None:
        """Add rows for the classes not in the head yet; return the new block index (None if none)."""
        new = [int(c) for c in classes if int(self.class_to_block[int(c)]) < 0]
        if not new:
            return None
        device = self.class_to_block.device
        ids = torch.tensor(new, dtype=torch.long, device=device)
        bound = 1.0 / math.sqrt(self.in_features)  # nn.Linear's default initialisation
        w = torch.empty(len(new), self.in_features, device=device).uniform_(-bound, bound)
        b = torch.empty(len(new), device=device).uniform_(-bound, bound)
        index = self.num_blocks
        self.weights.append(nn.Parameter(w))
        self.biases.append(nn.Parameter(b, requires_grad=self.kind == "linear"))
        self.register_buffer(f"block{index}_classes", ids)
        self.class_to_block[ids] = index
        return index

    def grow(self, classes: Sequence[int], *, train_only_new: bool) -> int | None:
        """Start an experience: :meth:`add_block` for ``classes``, then set what trains.

        train_only_new: only the new block trains (the masked setting: older rows stay
        fixed); False: every block trains. Returns the new block index (None if none).
        """
        block = self.add_block(classes)
        if train_only_new:
            self.set_trainable([] if block is None else [block])
        else:
            self.set_trainable(None)
        return block

    def block_classes(self, index: int) -> Tensor:
        return getattr(self, f"block{index}_classes")

    def set_trainable(self, blocks: Sequence[int] | None) -> None:
        """Make exactly these blocks trainable (None: all of them), freeze the others."""
        keep = set(range(self.num_blocks)) if blocks is None else set(blocks)
        for i in range(self.num_blocks):
            self.weights[i].requires_grad_(i in keep)
            self.biases[i].requires_grad_(i in keep and self.kind == "linear")

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in list(self.weights) + list(self.biases) if p.requires_grad]

    def forward(self, features: Tensor) -> Tensor:
        """features (B, D) -> logits (B, C); classes not in the head are ``-inf``."""
        if features.dim() != 2 or features.shape[1] != self.in_features:
            raise ValueError(
                f"features must have shape (B, {self.in_features}), got {tuple(features.shape)}"
            )
        out = features.new_full((features.shape[0], self.num_classes), float("-inf"))
        if not self.num_blocks:
            return out
        w = torch.cat(list(self.weights), dim=0)  # (n, D)
        ids = torch.cat([self.block_classes(i) for i in range(self.num_blocks)])  # (n,)
        if self.kind == "linear":
            scores = F.linear(features, w, torch.cat(list(self.biases)))  # (B, n)
        else:
            scores = self.scale * F.normalize(features, dim=-1) @ F.normalize(w, dim=-1).T
        return out.index_copy(1, ids, scores)
