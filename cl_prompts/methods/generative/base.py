""":class:`GenerativeMethod`: what the methods that answer by generation share.

A class is its answer text. ``score`` gives the mean log-probability per token of the
answers of some classes after each prompted input, one pass over the input and one over
all the answers against its key/value cache; the training loss is the cross-entropy of
each input's own answer tokens (never the prompt, template or input). Subclasses say
which soft prompts train (``_train_prompts``) and which an input is scored under
(``_logits``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from cl_prompts.data.tensors import take_rows
from cl_prompts.methods.base import ContinualMethod
from cl_prompts.methods.generative.answers import check_answer_texts, readable_label
from cl_prompts.methods.generative.config import GenerativeConfig

# Vocabulary rows a "vocab" prompt is drawn from: the first ids of a BPE vocabulary are its
# most frequent merges (Lester et al. draw from the 5,000 most common tokens).
VOCAB_INIT_TOKENS = 5000


def init_llm_prompts(backbone: Any, length: int, init: str, scale: float, labels: Sequence[str] = ()) -> Tensor:
    """A new prompt (length, D): ``"vocab"`` copies the embeddings of random common tokens
    (so it starts where real tokens live); ``"labels"`` the embeddings of ``labels`` joined
    by commas, cut or completed with ``"vocab"`` rows to ``length``; ``"normal"`` draws
    N(0, scale^2)."""
    table = backbone.model.get_input_embeddings().weight  # (V, D)
    if init == "normal":
        return torch.randn(length, table.shape[1], device=table.device) * scale
    ids = torch.randint(0, min(VOCAB_INIT_TOKENS, table.shape[0]), (length,))
    if init == "labels" and labels:
        words = backbone.tokenizer(", ".join(labels), add_special_tokens=False)["input_ids"][:length]
        ids[: len(words)] = torch.tensor(words, dtype=ids.dtype)
    return table.detach()[ids.to(table.device)].float().clone()


class GenerativeMethod(ContinualMethod):
    """Base of the methods that rank classes by the likelihood of their answer texts.

    Needs a causal LM backbone (:class:`~cl_prompts.backbones.PromptedCausalLM`). The
    answer texts default to the readable class names (``set_class_names``); give others
    with ``set_answer_texts`` (saved with the method).
    """

    generative = True
    config_class = GenerativeConfig
    data_parallel_refusal = "the methods that answer by generation are not built for data-parallel runs yet"

    def __init__(self, backbone: Any, num_classes: int, config: GenerativeConfig):
        if not getattr(backbone, "causal", False):
            name = getattr(getattr(backbone, "config", None), "name_or_path", type(backbone).__name__)
            raise TypeError(f"{self.name} answers by generation: it needs a causal LM backbone "
                            f"(e.g. --backbone smollm2), got {name!r}")
        super().__init__(backbone, num_classes, config)
        self.answer_texts: list[str] | None = None
        self._answers: dict[str, Tensor] | None = None  # every class's answer tokens (C, La)

    # ---------------------------------------------------------------- answers
    def set_class_names(self, names: Sequence[str] | None) -> None:
        """Name the classes; their readable names become the answer texts unless texts were given."""
        super().set_class_names(names)
        if names is not None and self.answer_texts is None:
            self.set_answer_texts([readable_label(n) for n in names])

    def set_answer_texts(self, texts: Sequence[str]) -> None:
        """The C answer texts, distinct (``"card arrival"`` for class ``card_arrival``)."""
        self.answer_texts = check_answer_texts(texts, self.num_classes)
        self._answers = None

    def answers_of(self, classes: Tensor) -> dict[str, Tensor]:
        """classes (A,) -> their answer tokens {"input_ids", "attention_mask"} (A, La), right-padded."""
        if self.answer_texts is None:
            raise RuntimeError(f"{self.name} has no answer texts: call set_class_names() or set_answer_texts()")
        if self._answers is None:
            enc = self.backbone.tokenize_answers(self.answer_texts)
            self._answers = {k: v.to(self.backbone.device) for k, v in enc.items()}
        rows = classes.to(self._answers["input_ids"].device)
        ids, mask = self._answers["input_ids"][rows], self._answers["attention_mask"][rows]
        width = max(int(mask.sum(dim=1).max()), 1)  # drop the all-padding columns
        return {"input_ids": ids[:, :width], "attention_mask": mask[:, :width]}

    def score(self, inputs: Any, classes: Tensor, input_prompts: Tensor | None = None) -> Tensor:
        """(B, A) mean log-probability per token of the answers of ``classes`` (A,) after each
        input with ``input_prompts`` (B|1, P, D) in front."""
        return self.backbone.answer_log_likelihood(inputs, input_prompts, self.answers_of(classes))

    def scores_over(self, inputs: Any, classes: Tensor, input_prompts: Tensor | None = None) -> Tensor:
        """(B, C) logits: ``score`` at ``classes``, ``-inf`` at every other class."""
        b = int(inputs["input_ids"].shape[0])
        out = torch.full((b, self.num_classes), float("-inf"), device=self.seen_mask.device)
        if len(classes):
            out[:, classes.to(out.device)] = self.score(inputs, classes, input_prompts).to(out.device)
        return out

    def new_prompt(self, classes: Sequence[int]) -> Tensor:
        """A prompt (P, D) for an experience of ``classes``, initialised as the config says."""
        c = self.config
        labels = [self.answer_texts[k] for k in classes] if self.answer_texts is not None else []
        return init_llm_prompts(self.backbone, c.prompt_length, c.prompt_init, c.prompt_init_scale, labels)

    def seen_classes(self) -> Tensor:
        return torch.nonzero(self.seen_mask).flatten()

    # ---------------------------------------------------------------- training
    def training_loss(self, inputs: Any, targets: Tensor, *, observe: bool = True) -> Tensor:
        """Cross-entropy of each input's own answer tokens under the training prompts.

        targets: classes seen so far (a replayed sample of an earlier experience trains the
        open prompts on its own answer); ``observe`` adds the open experience's samples only.
        """
        if not self.requires_training:
            raise RuntimeError(f"method {self.name!r} is not trained by gradient: use observe()")
        if not self.is_open:
            raise RuntimeError("call begin_experience() before training or observing")
        if targets.dim() != 1 or not bool(self.seen_mask[targets].all()):
            raise ValueError(f"targets must be (B,) classes seen so far, got {targets.tolist()}")
        own = self.current_mask[targets]
        if observe and bool(own.any()):
            with torch.no_grad():
                self.observe(take_rows(inputs, own), targets[own])
        prompts = self._train_prompts(inputs)
        rank_weight = getattr(self.config, "rank_weight", 0.0)
        if not rank_weight:
            return self.backbone.answer_loss(inputs, prompts, self.answers_of(targets))
        return self._answer_and_rank_loss(inputs, targets, prompts, rank_weight)

    def _answer_and_rank_loss(self, inputs: Any, targets: Tensor, prompts: Tensor | None, weight: float) -> Tensor:
        """answer loss + ``weight`` x cross-entropy of each target among the open experience's
        classes (and any replayed targets), from one scoring of all their answers.

        The answer loss is ``answer_loss``'s value: the mean log-probability of the target's
        answer times its length, summed, over the number of answer tokens.
        """
        ranked = self.current_mask.clone()
        ranked[targets] = True
        classes = torch.nonzero(ranked).flatten()  # (A,) sorted
        scores = self.score(inputs, classes, prompts)  # (B, A) mean log-probability per token
        pos = torch.searchsorted(classes, targets.to(classes.device))  # (B,) each target's column
        lengths = self.answers_of(classes)["attention_mask"].sum(dim=1).to(scores)[pos]  # (B,) answer tokens
        answer = -(scores.gather(1, pos[:, None]).squeeze(1) * lengths).sum() / lengths.sum()
        return answer + weight * torch.nn.functional.cross_entropy(scores, pos)

    def _train_prompts(self, inputs: Any) -> Tensor | None:
        """The prompts (B|1, P, D) the open experience trains."""
        raise NotImplementedError

    def _train_forward(self, inputs: Any) -> tuple[Tensor, list[Tensor]]:
        """Training logits, without gradient: the seen classes scored under the training prompts.

        They serve the metrics of a strategy; what trains is ``training_loss``, which the
        Avalanche plugin adds to the strategy's loss (a criterion on these logits adds a value
        but no gradient).
        """
        with torch.no_grad():
            return self.scores_over(inputs, self.seen_classes(), self._train_prompts(inputs)), []

    # ---------------------------------------------------------------- generation
    @torch.no_grad()
    def generate(self, inputs: Any, max_new_tokens: int = 16) -> list[str]:
        """Greedy answers (B texts) under the prompts the method predicts with; ``inputs``
        may be raw texts."""
        if isinstance(inputs, list):
            inputs = {k: v.to(self.backbone.device) for k, v in self.backbone.tokenize(inputs).items()}
        return self.backbone.generate(inputs, self._generation_prompts(inputs), max_new_tokens=max_new_tokens)

    def _generation_prompts(self, inputs: Any) -> Tensor | None:
        """The prompts (B|1, P, D) an input is answered under (the training ones by default)."""
        return self._train_prompts(inputs)

    # ---------------------------------------------------------------- save / load
    def extra_state(self) -> dict[str, Any]:
        return {"answer_texts": self.answer_texts}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        texts = state.get("answer_texts")
        if texts is not None:
            self.set_answer_texts(texts)
