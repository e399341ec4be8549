"""The vocabulary tokens nearest to each soft prompt (text backbones): what a prompt "reads as"."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from cl_prompts.checks import check_positive


@dataclass
class PromptTokens:
    """The ``k`` nearest vocabulary tokens of every position of one soft prompt.

    Attributes:
        prompt: the prompt's pool id (0 for a single prompt).
        experience: the experience that trained it (-1: shared by every experience).
        tokens: L rows of k token strings, nearest first.
        cosine: (L, k) their cosine similarity with the prompt position.
    """

    prompt: int
    experience: int
    tokens: list[list[str]]
    cosine: np.ndarray

    def table(self) -> str:
        """A plain-text table: one line per position, ``token (cosine)`` nearest first."""
        head = f"prompt {self.prompt} (experience {self.experience if self.experience >= 0 else 'shared'})"
        rows = [f"  {i:>3}  " + "  ".join(f"{t} ({c:.2f})" for t, c in zip(toks, cos, strict=True))
                for i, (toks, cos) in enumerate(zip(self.tokens, self.cosine, strict=True))]
        return "\n".join([head, *rows])


@torch.no_grad()
def nearest_tokens(model, k: int = 5, *, chunk: int = 4096) -> list[PromptTokens]:
    """Cosine of every prompt position against the backbone's word-embedding matrix; top ``k`` tokens.

    Needs a text backbone and a method whose prompts are input tokens (``input_prompts``:
    growing_pool, l2p, prompt_tuning); a ValueError names the problem otherwise. Soft
    prompts usually sit far from every real token (cosines around 0.1-0.3): the nearest
    tokens hint at a direction, they are not a translation.
    """
    check_positive("k", k, integer=True)
    backbone = model.backbone
    if backbone.modality != "text":
        raise ValueError("nearest_tokens needs a text backbone (it compares prompts with word embeddings)")
    found = model.input_prompts()
    if found is None:
        raise ValueError(f"method {model.name!r} puts no prompts in front of the input tokens "
                         "(its prompts are attention prefixes or it has none)")
    prompts, experience = found  # (N, L, D), (N,)
    vocab = F.normalize(backbone.model.get_input_embeddings().weight.detach().float(), dim=-1)  # (V, D)
    if prompts.shape[-1] != vocab.shape[-1]:
        raise ValueError(f"prompt width {prompts.shape[-1]} differs from the word embeddings' {vocab.shape[-1]}")
    k = min(k, vocab.shape[0])
    flat = F.normalize(prompts.reshape(-1, prompts.shape[-1]).float().to(vocab.device), dim=-1)  # (N*L, D)
    scores, ids = [], []
    for start in range(0, flat.shape[0], chunk):
        s, i = (flat[start:start + chunk] @ vocab.T).topk(k, dim=-1)  # (n, k)
        scores.append(s.cpu())
        ids.append(i.cpu())
    n, length = prompts.shape[:2]
    scores_all = torch.cat(scores).view(n, length, k).numpy()
    ids_all = torch.cat(ids).view(n, length, k)
    convert = backbone.tokenizer.convert_ids_to_tokens
    return [PromptTokens(prompt=p, experience=int(experience[p]),
                         tokens=[convert(row.tolist()) for row in ids_all[p]], cosine=scores_all[p])
            for p in range(n)]
