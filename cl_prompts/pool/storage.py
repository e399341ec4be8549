"""PoolStorage: the prompts (L x D) and keys (D) of a PromptPool, grouped in task segments.

The finished (frozen) tasks live in two growing *buffers*, ``frozen_prompts``
(Nf, L, D) and ``frozen_keys`` (Nf, D); only the current task's ``prompts`` (Nt, L, D)
and ``keys`` (Nt, D) are ``nn.Parameter``. Freezing copies the current task into the
buffers (a clone, not a view), so no optimizer, even one that still holds the old
Parameter objects with Adam state and weight decay, can move a frozen value.

The frozen keys are also kept, L2-normalised, in a :class:`KeyIndex` (added once, with
``add_with_ids``) for :class:`~cl_prompts.pool.PromptPool`'s selection to search.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cl_prompts.checks import is_int
from cl_prompts.index import KeyIndex
from cl_prompts.pool.config import PoolConfig
from cl_prompts.pool.validation import check_ids, check_initial, check_tasks


class PoolStorage(nn.Module):
    """Prompts with keys in task segments, frozen task by task, plus the key index.

    The storage half of :class:`~cl_prompts.pool.PromptPool` (which adds selection);
    see the module docstring.
    """

    def __init__(self, config: PoolConfig) -> None:
        super().__init__()
        if not isinstance(config, PoolConfig):
            raise TypeError(f"config must be a PoolConfig, got {type(config).__name__}")
        self.config = config
        d, length = config.embed_dim, config.prompt_length
        self.register_buffer("frozen_prompts", torch.empty(0, length, d))  # (Nf, L, D)
        self.register_buffer("frozen_keys", torch.empty(0, config.query_dim))  # (Nf, Dk)
        self.register_parameter("prompts", None)  # (Nt, L, D) current task, trainable
        self.register_parameter("keys", None)  # (Nt, D)
        self.register_buffer("usage", torch.zeros(0, dtype=torch.long))  # (N,) train selections
        # usage when the current task started: what the frequency penalty looks at
        self.register_buffer("usage_at_task_start", torch.zeros(0, dtype=torch.long))
        self._task_sizes: list[int] = []
        self.index = KeyIndex(
            config.query_dim,
            config.index,
            nprobe=config.nprobe,
            ef_search=config.ef_search,
            flat_backend=config.flat_backend,
            shards=config.index_shards,
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
            keys: optional initial keys (n, Dk); prompts: optional initial prompts (n, L, D).
            generator: optional torch.Generator for the random initialisation (CPU).
        Returns:
            (n,) long: the new ids.
        """
        if not is_int(num_prompts):
            raise TypeError(f"num_prompts must be an int, got {type(num_prompts).__name__}")
        if num_prompts <= 0:
            raise ValueError(f"num_prompts must be > 0, got {num_prompts}")
        cfg = self.config
        shape_p = (num_prompts, cfg.prompt_length, cfg.embed_dim)
        shape_k = (num_prompts, cfg.query_dim)
        check_initial("keys", keys, shape_k)
        check_initial("prompts", prompts, shape_p)
        self.freeze()
        anchor = self._anchor()
        new_p = self._init(shape_p, generator) if prompts is None else prompts.detach().clone()
        new_k = self._init_keys(shape_k, generator) if keys is None else keys.detach().clone()
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

    def _init_keys(self, shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
        if self.config.key_init == "jax_uniform":
            return torch.rand(shape, generator=generator) * 0.01
        return self._init(shape, generator)

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

    @torch.no_grad()
    def copy_prompts_from(self, task: int) -> None:
        """Restart the open task's trainable prompts as a copy of frozen ``task``'s (prompt recycling).

        In place, so an optimizer built over them keeps working; keys are left as they are.
        The two tasks must hold as many prompts.
        """
        if not self.is_current_trainable:
            raise RuntimeError("no open task: add_task() first")
        check_tasks([task], self.num_tasks)
        if task == self.current_task:
            raise ValueError(f"task {task} is the open task itself; name a frozen one")
        start, stop = self.task_range(task)
        if stop - start != self.prompts.shape[0]:
            raise ValueError(f"task {task} holds {stop - start} prompts, the open task {self.prompts.shape[0]}")
        self.prompts.copy_(self.frozen_prompts[start:stop])

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
            # index_select, not self.prompts[local]: the backward of advanced indexing with
            # repeated ids adds with parallel atomics on CPU, whose order (and so the float
            # result) changes from run to run; index_select's backward is deterministic.
            flat = local.reshape(-1)
            tp = self.prompts.index_select(0, flat).view(*local.shape, *self.prompts.shape[1:])
            tk = self.keys.index_select(0, flat).view(*local.shape, *self.keys.shape[1:])
            if prompts is None:
                prompts, keys = tp, tk
            else:  # where(): gradient reaches only the rows actually chosen
                prompts = torch.where(is_new[..., None, None], tp, prompts)
                keys = torch.where(is_new[..., None], tk, keys)
        return prompts, keys

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"embed_dim={c.embed_dim}, prompt_length={c.prompt_length}, top_k={c.top_k}, "
            f"index={c.index!r}, tasks={self._task_sizes}, frozen={self.num_frozen}"
        )
