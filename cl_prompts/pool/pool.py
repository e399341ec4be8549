"""PromptPool: prompts (L x D) with one learned key (D) each, grouped in task segments.

Storage lives in the base class :class:`~cl_prompts.pool.storage.PoolStorage`: frozen
tasks in buffers, only the current task's prompts and keys as ``nn.Parameter``.

Selection (this module): cosine similarity of the L2-normalised query with the normalised
keys. The frozen keys sit in a :class:`KeyIndex` (added once, ``add_with_ids``); the
current task's keys are searched exactly in torch; the candidates are merged, and the
scores of the chosen keys are recomputed in torch so the key-matching loss has gradients.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from cl_prompts.checks import is_int
from cl_prompts.index import KeyIndex
from cl_prompts.pool.config import PoolConfig
from cl_prompts.pool.selection import Selection, batchwise_ids, merge_topk
from cl_prompts.pool.storage import PoolStorage
from cl_prompts.pool.validation import check_query, check_tasks, merge_ranges


class PromptPool(PoolStorage):
    """A growing pool of prompts with keys, one segment per task. See the module docstring.

    Storage (growth, freezing, the key index, lookup) comes from :class:`PoolStorage`;
    selection and the key-matching loss are here.
    """

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
            query: (B, Dk) float (Dk = ``config.query_dim``); moved to the pool's device.
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
        if not is_int(k):
            raise TypeError(f"k must be an int, got {type(k).__name__}")
        if k <= 0:
            raise ValueError(f"k must be > 0, got {k}")
        if self.size == 0:
            raise ValueError("the pool is empty: call add_task(num_prompts) before select()")
        device = self._anchor().device
        q = check_query(query, self.config.query_dim).to(device, self._anchor().dtype)
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
        return Selection(ids=ids, scores=scores, prompts=prompts.reshape(b, -1, self.config.embed_dim))

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
        if not frozen_ranges:  # exact scores over trainable keys only: nothing can be missing
            return ids
        missing = (ids < 0).any(dim=1)
        if missing.any():  # an approximate index found too few: exact search for those rows
            ex = KeyIndex(self.config.query_dim, "torch")
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
