"""PromptPool: prompts (L x D) with one learned key (D) each, grouped in task segments.

Storage: the finished (frozen) tasks live in two growing *buffers*, ``frozen_prompts``
(Nf, L, D) and ``frozen_keys`` (Nf, D); only the current task's ``prompts`` (Nt, L, D)
and ``keys`` (Nt, D) are ``nn.Parameter``. Freezing copies the current task into the
buffers (a clone, not a view), so no optimizer, even one that still holds the old
Parameter objects with Adam state and weight decay, can move a frozen value.

Selection: cosine similarity of the L2-normalised query with the normalised keys. The
frozen keys sit in a :class:`KeyIndex` (added once, ``add_with_ids``); the current
task's keys are searched exactly in torch; the candidates are merged, and the scores
of the chosen keys are recomputed in torch so the key-matching loss has gradients.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cl_prompts.index import KeyIndex
from cl_prompts.pool.config import PoolConfig
from cl_prompts.pool.selection import Selection, batchwise_ids, merge_topk
from cl_prompts.pool.validation import (
    check_ids,
    check_initial,
    check_query,
    check_tasks,
    merge_ranges,
)


class PromptPool(nn.Module):
    """A growing pool of prompts with keys, one segment per task. See module docstring."""

    def __init__(self, config: PoolConfig) -> None:
        super().__init__()
        if not isinstance(config, PoolConfig):
            raise TypeError(f"config must be a PoolConfig, got {type(config).__name__}")
        self.config = config
        d, length = config.embed_dim, config.prompt_length
        self.register_buffer("frozen_prompts", torch.empty(0, length, d))  # (Nf, L, D)
        self.register_buffer("frozen_keys", torch.empty(0, d))  # (Nf, D)
        self.register_parameter("prompts", None)  # (Nt, L, D) current task, trainable
        self.register_parameter("keys", None)  # (Nt, D)
        self.register_buffer("usage", torch.zeros(0, dtype=torch.long))  # (N,) train selections
        # usage when the current task started: what the frequency penalty looks at
        self.register_buffer("usage_at_task_start", torch.zeros(0, dtype=torch.long))
        self._task_sizes: list[int] = []
        self.index = KeyIndex(
            d,
            config.index,
            nprobe=config.nprobe,
            ef_search=config.ef_search,
            flat_backend=config.flat_backend,
        )
        self._indexed = 0  # frozen keys already in self.index
        self.register_load_state_dict_post_hook(lambda module, _: module.rebuild_index())

    # ------------------------------------------------------------------ structure
    @property
    def num_tasks(self) -> int:
        return len(self._task_sizes)

    @property
    def current_task(self) -> int:
        """Index of the last task, -1 when the pool is empty."""
        return self.num_tasks - 1

    @property
    def size(self) -> int:
        """Total number of prompts."""
        return sum(self._task_sizes)

    @property
    def num_frozen(self) -> int:
        """Number of frozen prompts (they have ids ``0 .. num_frozen - 1``)."""
        return int(self.frozen_keys.shape[0])

    @property
    def task_sizes(self) -> list[int]:
        return list(self._task_sizes)

    @property
    def is_current_trainable(self) -> bool:
        return self.keys is not None

    def task_range(self, task: int) -> tuple[int, int]:
        """Half-open id range ``[start, stop)`` of a task's prompts."""
        check_tasks([task], self.num_tasks)
        start = sum(self._task_sizes[:task])
        return start, start + self._task_sizes[task]

    def task_of(self, ids: torch.Tensor) -> torch.Tensor:
        """Task index of each id; same shape as ``ids``."""
        ids = check_ids(ids, self.size)
        bounds = torch.tensor(self._task_sizes, device=ids.device).cumsum(0)
        return torch.bucketize(ids, bounds, right=True)

    def _anchor(self) -> torch.Tensor:
        return self.frozen_keys  # always present; follows .to(device/dtype)

    # ------------------------------------------------------------------ growth
    def add_task(
        self,
        num_prompts: int,
        keys: torch.Tensor | None = None,
        prompts: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Add a task segment of ``num_prompts`` trainable prompts; freeze every earlier one.

        Args:
            num_prompts: n > 0.
            keys: optional initial keys (n, D); prompts: optional initial prompts (n, L, D).
            generator: optional torch.Generator for the random initialisation (CPU).
        Returns:
            (n,) long: the new ids.
        """
        if isinstance(num_prompts, bool) or not isinstance(num_prompts, int):
            raise TypeError(f"num_prompts must be an int, got {type(num_prompts).__name__}")
        if num_prompts <= 0:
            raise ValueError(f"num_prompts must be > 0, got {num_prompts}")
        cfg = self.config
        shape_p = (num_prompts, cfg.prompt_length, cfg.embed_dim)
        shape_k = (num_prompts, cfg.embed_dim)
        check_initial("keys", keys, shape_k)
        check_initial("prompts", prompts, shape_p)
        self.freeze()
        anchor = self._anchor()
        new_p = self._init(shape_p, generator) if prompts is None else prompts.detach().clone()
        new_k = self._init(shape_k, generator) if keys is None else keys.detach().clone()
        start = self.size
        self.prompts = nn.Parameter(new_p.to(anchor.device, anchor.dtype))
        self.keys = nn.Parameter(new_k.to(anchor.device, anchor.dtype))
        self._task_sizes.append(num_prompts)
        grow = torch.zeros(num_prompts, dtype=torch.long, device=anchor.device)
        self.usage = torch.cat([self.usage, grow])
        self.usage_at_task_start = self.usage.clone()
        return torch.arange(start, start + num_prompts, device=anchor.device)

    def _init(self, shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
        s = self.config.init_scale
        if self.config.prompt_init == "uniform":
            return (torch.rand(shape, generator=generator) * 2 - 1) * s
        return torch.randn(shape, generator=generator) * s

    def freeze(self) -> None:
        """Freeze the current task (end of its training). No-op when nothing is trainable."""
        if self.keys is None:
            return
        old_p, old_k = self.prompts, self.keys
        # clone: the buffers must not share storage with Parameters an optimizer may hold
        self.frozen_prompts = torch.cat([self.frozen_prompts, old_p.detach().clone()])
        self.frozen_keys = torch.cat([self.frozen_keys, old_k.detach().clone()])
        for p in (old_p, old_k):
            p.grad = None  # Adam skips params without grad, even with old state
            p.requires_grad_(False)
        self.prompts = None
        self.keys = None
        self._sync_index()

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The current task's prompts and keys (empty once frozen)."""
        return [p for p in (self.prompts, self.keys) if p is not None]

    # ------------------------------------------------------------------ index
    def _sync_index(self) -> None:
        """Add frozen keys not yet indexed (normalised, so inner product = cosine)."""
        nf = self.num_frozen
        if self._indexed < nf:
            new = F.normalize(self.frozen_keys[self._indexed :].detach().float(), dim=1)
            ids = torch.arange(self._indexed, nf, device=new.device)
            self.index.add(new, ids)
            self._indexed = nf

    def rebuild_index(self) -> None:
        """Rebuild the index from ``frozen_keys`` (after loading or editing keys)."""
        self.index.reset()
        self._indexed = 0
        self._sync_index()

    def _apply(self, fn, *args, **kwargs):  # noqa: ANN001 - torch's signature
        out = super()._apply(fn, *args, **kwargs)
        self.rebuild_index()  # keep the exact (torch) search on the pool's device
        return out

    # ------------------------------------------------------------------ lookup
    def lookup(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Current values of prompts and keys for ``ids`` of any shape S.

        Returns:
            prompts (*S, L, D) and keys (*S, D), differentiable for trainable ids only.
        """
        ids = check_ids(ids, self.size).to(self._anchor().device)
        nf = self.num_frozen
        prompts = self.frozen_prompts[ids.clamp(max=max(nf - 1, 0))] if nf else None
        keys = self.frozen_keys[ids.clamp(max=max(nf - 1, 0))] if nf else None
        if self.keys is not None:
            local = (ids - nf).clamp(min=0)
            is_new = ids >= nf
            tp, tk = self.prompts[local], self.keys[local]
            if prompts is None:
                prompts, keys = tp, tk
            else:  # where(): gradient reaches only the rows actually chosen
                prompts = torch.where(is_new[..., None, None], tp, prompts)
                keys = torch.where(is_new[..., None], tk, keys)
        return prompts, keys

    # ------------------------------------------------------------------ selection
    def select(
        self,
        query: torch.Tensor,
        k: int | None = None,
        tasks: Sequence[int] | None = None,
        batchwise: bool = False,
    ) -> Selection:
        """Choose k prompts per query by cosine similarity of query and keys.

        Args:
            query: (B, D) float; moved to the pool's device.
            k: prompts per input (default ``config.top_k``).
            tasks: restrict the choice to these task ids (e.g. ``[pool.current_task]``
                while training); None means every task.
            batchwise: every row gets the k prompts chosen most often over the batch
                (L2P). Train time only: at test time it leaks task identity through the
                batch, so a warning is given in eval mode.
        Returns:
            :class:`Selection` with ids (B, k), scores (B, k), prompts (B, k * L, D).
        """
        k = self.config.top_k if k is None else k
        if isinstance(k, bool) or not isinstance(k, int):
            raise TypeError(f"k must be an int, got {type(k).__name__}")
        if k <= 0:
            raise ValueError(f"k must be > 0, got {k}")
        if self.size == 0:
            raise ValueError("the pool is empty: call add_task(num_prompts) before select()")
        device = self._anchor().device
        q = check_query(query, self.config.embed_dim).to(device, self._anchor().dtype)
        task_list = list(range(self.num_tasks)) if tasks is None else check_tasks(tasks, self.num_tasks)
        ranges = [self.task_range(t) for t in task_list]
        selectable = sum(stop - start for start, stop in ranges)
        if k > selectable:
            raise ValueError(
                f"k={k} is larger than the selectable pool ({selectable} prompts in tasks {task_list})"
            )
        qn = F.normalize(q, dim=1)  # (B, D)
        with torch.no_grad():
            ids = self._choose(qn.detach(), k, ranges, tasks is None)
            if batchwise:
                if not self.training:
                    warnings.warn(
                        "batchwise selection in eval mode leaks task identity (the whole "
                        "batch shares prompts); use it at train time only",
                        UserWarning,
                        stacklevel=2,
                    )
                _, keys_b = self.lookup(ids)
                s = (qn[:, None, :] * F.normalize(keys_b.float(), dim=-1).to(qn.dtype)).sum(-1)
                ids = batchwise_ids(ids, s, self.size, k).expand(q.shape[0], k).clone()
            if self.training:
                self.usage.index_add_(0, ids.reshape(-1), torch.ones_like(ids.reshape(-1)))
        prompts, keys = self.lookup(ids)  # (B, k, L, D), (B, k, D)
        scores = (qn[:, None, :] * F.normalize(keys, dim=-1)).sum(-1)  # (B, k)
        b = q.shape[0]
        return Selection(ids=ids, scores=scores, prompts=prompts.reshape(b, -1, q.shape[1]))

    def _choose(self, qn: torch.Tensor, k: int, ranges: list[tuple[int, int]], everything: bool) -> torch.Tensor:
        """(B, k) ids: index over frozen keys + exact over trainable, merged."""
        nf = self.num_frozen
        penalty = self._penalty()
        if penalty is not None:  # scores change with usage: exact search over all keys
            s = qn @ F.normalize(self._all_keys(), dim=1).T - penalty  # (B, N)
            allowed = torch.zeros(self.size, dtype=torch.bool, device=qn.device)
            for start, stop in ranges:
                allowed[start:stop] = True
            s[:, ~allowed] = float("-inf")
            return torch.topk(s, k, dim=1).indices
        cand_s, cand_i = [], []
        frozen_ranges = merge_ranges([(a, min(b, nf)) for a, b in ranges if a < nf])
        if frozen_ranges:
            self._sync_index()
            _, fi = self.index.search(qn, k, None if everything else frozen_ranges)
            fi = fi.to(qn.device)
            # rank candidates by exact torch cosine, consistent with the trainable part
            _, fk = self.lookup(fi.clamp(min=0))
            fs = (qn[:, None, :] * F.normalize(fk, dim=-1)).sum(-1)
            cand_s.append(fs.masked_fill(fi < 0, float("-inf")))
            cand_i.append(fi)
        if self.keys is not None and any(b > nf for _, b in ranges):
            ts = qn @ F.normalize(self.keys.detach(), dim=1).T  # (B, Nt)
            cand_s.append(ts)
            cand_i.append(torch.arange(nf, self.size, device=qn.device).expand_as(ts))
        _, ids = merge_topk(cand_s, cand_i, k)
        missing = (ids < 0).any(dim=1)
        if missing.any():  # an approximate index found too few: exact search for those rows
            ex = KeyIndex(self.config.embed_dim, "torch")
            keys = F.normalize(self._all_keys().float(), dim=1)
            ex.add(keys, torch.arange(self.size, device=qn.device))
            _, fix = ex.search(qn[missing].float(), k, ranges)
            ids[missing] = fix
        return ids

    def _all_keys(self) -> torch.Tensor:
        """(N, D) every key, detached (for exact no-grad searches)."""
        if self.keys is None:
            return self.frozen_keys
        return torch.cat([self.frozen_keys, self.keys.detach()])

    def _penalty(self) -> torch.Tensor | None:
        """(N,) frequency penalty while training, None when inactive."""
        lam = self.config.frequency_penalty
        past = self.usage_at_task_start
        if not self.training or lam == 0 or int(past.sum()) == 0:
            return None
        return lam * past.float() / past.sum().float()

    def key_matching_loss(self, selection: Selection) -> torch.Tensor:
        """Scalar: mean over the batch of the sum over k of (1 - cosine score)."""
        if not isinstance(selection, Selection):
            raise TypeError(f"selection must be a Selection, got {type(selection).__name__}")
        return (1.0 - selection.scores).sum(dim=1).mean()

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"embed_dim={c.embed_dim}, prompt_length={c.prompt_length}, top_k={c.top_k}, "
            f"index={c.index!r}, tasks={self._task_sizes}, frozen={self.num_frozen}"
        )

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, path) -> None:  # noqa: ANN001 - str | PathLike
        """Write ``pool.safetensors`` + ``config.json`` under directory ``path`` atomically."""
        from cl_prompts.pool.io import save_pool

        save_pool(self, path)

    @classmethod
    def from_pretrained(cls, path, config: PoolConfig | None = None, map_location="cpu") -> PromptPool:  # noqa: ANN001
        """Load a saved pool; ``config`` (optional) must agree on embed_dim / prompt_length."""
        from cl_prompts.pool.io import load_pool

        return load_pool(path, config=config, map_location=map_location)
