"""Instruction templates: how an input text and an answer text become token ids.

A template is the text around an input (``head`` + input + ``tail``, the tail ending
where the model starts to answer) and around an answer (``answer_prefix`` + answer +
``answer_suffix``). The suffix is the end-of-turn marker, so that an answer scores as a
whole: without it "card" would score as well as the start of "card arrival".

- "chat": the tokenizer's own chat template, one user turn, generation prompt on.
- "plain": ``Input: <text>\\nAnswer: <answer><eos>`` for tokenizers without one.

Works on any tokenizer with ``__call__``; importing it does not import transformers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cl_prompts.checks import check_choice

from .causal_config import PADDING_SIDES, TEMPLATES

_INPUT = "\u2063cl-prompts-input\u2063"  # invisible separators: no template writes them
_ANSWER = "\u2063cl-prompts-answer\u2063"


@dataclass(frozen=True)
class InstructionTemplate:
    """The text around inputs and answers; build it with :func:`build_template`."""

    kind: str
    head: str
    tail: str
    input_prefix: str = ""
    answer_prefix: str = ""
    answer_suffix: str = ""
    bos: bool = False

    def format(self, text: str, answer: str | None = None) -> str:
        """The whole templated text of one input (and answer), as a string."""
        prompt = self.head + self.input_prefix + text + self.tail
        return prompt if answer is None else prompt + self.answer_prefix + answer + self.answer_suffix


def build_template(tokenizer, kind: str = "auto", instruction: str | None = None) -> InstructionTemplate:
    """The template ``kind`` ("auto", "chat", "plain") for ``tokenizer``.

    "auto" is "chat" when the tokenizer has a chat template. Raises ValueError for
    "chat" without one. instruction: the chat's system message (None: the template's
    own default, if any), or a first line before ``Input:`` in the plain template.
    """
    check_choice("template", kind, TEMPLATES)
    has_chat = bool(getattr(tokenizer, "chat_template", None))
    if kind == "chat" and not has_chat:
        raise ValueError("template='chat' needs a tokenizer with a chat template; use template='plain'")
    end = getattr(tokenizer, "eos_token", None) or getattr(tokenizer, "sep_token", None) or ""
    if kind == "plain" or not has_chat:
        head = "Input:" if instruction is None else f"{instruction}\nInput:"
        return InstructionTemplate("plain", head, "\nAnswer:", input_prefix=" ", answer_prefix=" ",
                                   answer_suffix=end, bos=getattr(tokenizer, "bos_token_id", None) is not None)
    system = [] if instruction is None else [{"role": "system", "content": instruction}]
    user = [*system, {"role": "user", "content": _INPUT}]
    prompt = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    if prompt.count(_INPUT) != 1:
        raise ValueError("the tokenizer's chat template does not write the user's message once; use template='plain'")
    head, tail = prompt.split(_INPUT)
    full = tokenizer.apply_chat_template(user + [{"role": "assistant", "content": _ANSWER}], tokenize=False)
    prefix, suffix = "", end
    if full.startswith(prompt) and full.count(_ANSWER) == 1:  # the answer's own turn markers
        prefix, suffix = full[len(prompt):].split(_ANSWER)
        suffix = suffix.rstrip()  # the newline after the end-of-turn token is not part of the answer
    return InstructionTemplate("chat", head, tail, answer_prefix=prefix, answer_suffix=suffix)


def _ids(tokenizer, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def _pad(rows: list[list[int]], pad_id: int, side: str, width: int | None = None) -> dict[str, torch.Tensor]:
    """Rows of ids -> {"input_ids", "attention_mask"} (N, width) padded on ``side``."""
    width = width or max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        cols = slice(0, len(row)) if side == "right" else slice(width - len(row), width)
        ids[i, cols] = torch.tensor(row, dtype=torch.long)
        mask[i, cols] = 1
    return {"input_ids": ids, "attention_mask": mask}


def _frame(template: InstructionTemplate, tokenizer) -> tuple[list[int], list[int]]:
    """The template's token ids before and after an input."""
    head = _ids(tokenizer, [template.head])[0]
    if template.bos:
        head = [tokenizer.bos_token_id, *head]
    return head, _ids(tokenizer, [template.tail])[0]


def head_ids(template: InstructionTemplate, tokenizer) -> list[int]:
    """The token ids every templated input starts with (the template's head)."""
    return _frame(template, tokenizer)[0]


def text_budget(template: InstructionTemplate, tokenizer, max_length: int) -> int:
    """Tokens left for an input's text once the template fits in ``max_length``; ValueError if none."""
    head, tail = _frame(template, tokenizer)
    budget = max_length - len(head) - len(tail)
    if budget < 1:
        raise ValueError(f"max_length={max_length} leaves no room for the input: the {template.kind} template "
                         f"alone takes {len(head) + len(tail)} tokens")
    return budget


def encode_inputs(template: InstructionTemplate, tokenizer, texts: list[str], max_length: int,
                  padding_side: str = "left", pad_to_max: bool = True) -> dict[str, torch.Tensor]:
    """Templated inputs: {"input_ids", "attention_mask"} (N, max_length), long.

    Each text is truncated (at its end) so that the template fits whole; raises
    ValueError when the template alone takes ``max_length`` tokens or more.
    """
    check_choice("padding_side", padding_side, PADDING_SIDES)
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must be a list of str")
    head, tail = _frame(template, tokenizer)
    budget = text_budget(template, tokenizer, max_length)
    bodies = _ids(tokenizer, [template.input_prefix + t for t in texts])
    rows = [head + body[:budget] + tail for body in bodies]
    return _pad(rows, tokenizer.pad_token_id, padding_side, max_length if pad_to_max else None)


def encode_answers(template: InstructionTemplate, tokenizer, answers: list[str],
                   max_length: int) -> dict[str, torch.Tensor]:
    """Answers with their end-of-turn marker: {"input_ids", "attention_mask"} (A, La), right-padded.

    La is the longest answer's length (at most ``max_length``); a longer answer is cut
    before its end marker, which is kept.
    """
    if isinstance(answers, str) or not answers or not all(isinstance(a, str) and a for a in answers):
        raise TypeError("answers must be a non-empty list of non-empty str")
    suffix = _ids(tokenizer, [template.answer_suffix])[0] if template.answer_suffix else []
    if len(suffix) >= max_length:
        raise ValueError(f"answer_max_length={max_length} leaves no room for an answer before its "
                         f"{len(suffix)}-token end marker")
    bodies = _ids(tokenizer, [template.answer_prefix + a for a in answers])
    rows = [body[: max_length - len(suffix)] + suffix for body in bodies]
    if any(not row for row in rows):
        raise ValueError("an answer tokenizes to no tokens")
    return _pad(rows, tokenizer.pad_token_id, "right")


def stop_token_ids(template: InstructionTemplate, tokenizer) -> set[int]:
    """Token ids that end a generated answer: the end marker's first token and eos."""
    stops = set()
    if getattr(tokenizer, "eos_token_id", None) is not None:
        stops.add(int(tokenizer.eos_token_id))
    if template.answer_suffix.strip():
        stops.add(_ids(tokenizer, [template.answer_suffix.strip()])[0][0])
    return stops
