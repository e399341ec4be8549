"""Answer "which intent is this sentence?" with a trained model, or reject it as out of scope.

    predictor = Predictor.from_run("runs/clinc150-growing_pool-seed0")
    for p in predictor.predict(["book me a flight to rome", "what is the capital of france"]):
        print(p.labels[0], p.probabilities[0], p.out_of_scope)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from cl_prompts.backbones.inputs import to_device
from cl_prompts.checks import is_int
from cl_prompts.choices import CAUSAL_POOLINGS
from cl_prompts.data.tensors import trim_padding
from cl_prompts.inference.defaults import (
    CALIBRATION_FILE,
    DEFAULT_FALSE_REJECTION,
    DEFAULT_SCORE,
    DEFAULT_SIMILARITY_WEIGHT,
    FALLBACK_SCORE,
)
from cl_prompts.inference.out_of_scope import Calibration, calibrate
from cl_prompts.safe_io import join_inside, printable, read_json, require


@dataclass
class Prediction:
    """The answer for one input.

    labels / class_ids / probabilities: the top-k classes, best first, with
    ``softmax(logits / T)`` probabilities (T from the calibration, else 1).
    experience: the experience the key index routed the input to (None: the method has
    no per-experience routing). prompt_ids / key_scores: the prompts used and their key
    scores (empty without a pool). score: the out-of-scope score (higher: more in scope);
    out_of_scope: ``score < threshold``, None when the model was never calibrated.
    """

    text: str
    labels: list[str]
    class_ids: list[int]
    probabilities: list[float]
    experience: int | None
    prompt_ids: list[int]
    key_scores: list[float]
    score: float
    out_of_scope: bool | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Predictor:
    """A trained method (and its calibration) that labels texts.

    Args:
        model: a :class:`~cl_prompts.methods.ContinualMethod` on a text backbone.
        calibration: temperature and out-of-scope threshold; default the model's own.
        batch_size: texts per forward pass.
    """

    def __init__(self, model, calibration: Calibration | None = None, batch_size: int = 128) -> None:
        if getattr(model.backbone, "modality", "text") != "text":
            raise ValueError("Predictor labels texts; this model's backbone is not a text model")
        if not any(model.finished):
            raise ValueError("the model has not finished any experience yet: nothing to predict")
        self.model = model.eval()
        if calibration is None and model.calibration is not None:
            calibration = Calibration.from_dict(model.calibration, "the model's saved calibration")
        self.calibration = calibration
        self.batch_size = batch_size
        names = model.class_names
        if names is None:
            warnings.warn("the model holds no class names (saved by an older version): labels are class ids",
                          UserWarning, stacklevel=2)
            names = [str(i) for i in range(model.num_classes)]
        self.class_names = list(names)

    # ---------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, model_dir: str | Path, device: str = "cpu", backbone=None,
                        trust_remote_code: bool = False) -> Predictor:
        """A saved method folder (``method.json`` + ``method.safetensors``); loads its backbone.

        trust_remote_code: let transformers run code shipped with the backbone (never read
        from the folder: only the caller decides).
        """
        from cl_prompts.methods import load_model
        from cl_prompts.methods.saving import CONFIG_FILE, read_meta

        if backbone is None:
            from cl_prompts.backbones import BackboneConfig, load_backbone

            meta = read_meta(model_dir)
            saved = saved_backbone_config(meta, model_dir)
            try:
                config = BackboneConfig(**saved, trust_remote_code=trust_remote_code)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{Path(model_dir) / CONFIG_FILE}: backbone_config: {exc}") from None
            backbone = load_backbone(config)
        backbone = backbone.to(device)
        model = load_model(model_dir, backbone)
        try:
            return cls(model)
        except ValueError as exc:
            raise ValueError(f"{Path(model_dir) / CONFIG_FILE}: {exc}") from None

    @classmethod
    def from_run(cls, run_dir: str | Path, device: str = "cpu", backbone=None,
                 trust_remote_code: bool = False) -> Predictor:
        """The latest checkpoint of a run folder (finished, or stopped after any experience).

        A ``calibration.json`` in the folder (``cl-prompts calibrate``) replaces the model's.
        """
        from cl_prompts.run.checkpoints import has_checkpoint, latest_model_dir

        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise FileNotFoundError(f"run folder not found: {run_dir}")
        if not has_checkpoint(run_dir):
            raise FileNotFoundError(f"{run_dir} holds no checkpoint: was the run started with this folder as --out?")
        predictor = cls.from_pretrained(latest_model_dir(run_dir), device=device, backbone=backbone,
                                        trust_remote_code=trust_remote_code)
        own = run_dir / CALIBRATION_FILE
        if own.exists() or own.is_symlink():
            data = read_json(own, "calibration file", max_bytes=1 << 20, follow_symlinks=False)
            predictor.calibration = Calibration.from_dict(data, str(own))
        return predictor

    # ---------------------------------------------------------------- inference
    def _batches(self, texts: list[str]):
        """(positions in ``texts``, their texts, tokenized inputs) per batch; shortest texts first, so
        that a batch carries little padding (the callers put the results back in the texts' order)."""
        device = self.model.seen_mask.device
        lengths = [len(ids) for ids in self.model.backbone.tokenizer(texts, truncation=False)["input_ids"]]
        order = sorted(range(len(texts)), key=lengths.__getitem__)  # stable
        for start in range(0, len(texts), self.batch_size):
            positions = order[start:start + self.batch_size]
            chunk = [texts[i] for i in positions]
            inputs = trim_padding(self.model.backbone.tokenize(chunk))
            yield positions, chunk, to_device(inputs, device)

    @torch.no_grad()
    def logits(self, texts: Sequence[str]) -> Tensor:
        """(N, C) float logits; classes never seen are ``-inf``."""
        return self.logits_and_similarity(texts)[0]

    @torch.no_grad()
    def logits_and_similarity(self, texts: Sequence[str]) -> tuple[Tensor, Tensor | None]:
        """(N, C) logits and (N,) class similarity (None: the method keeps no class means)."""
        logits, sims, positions = [], [], []
        for where, _, inputs in self._batches(_check_texts(texts)):
            positions += where
            logits.append(self.model(inputs).float().cpu())
            sim = self.model.class_similarity(inputs)
            sims.append(None if sim is None else sim.double().cpu())
        back = torch.argsort(torch.tensor(positions))  # batch order -> the texts' order
        return torch.cat(logits)[back], None if sims[0] is None else torch.cat(sims)[back]

    @torch.no_grad()
    def predict(self, texts: Sequence[str], top_k: int = 3) -> list[Prediction]:
        """The top-k classes, routing and out-of-scope decision of each text."""
        texts = _check_texts(texts)
        if not is_int(top_k) or top_k < 1:
            raise ValueError(f"top_k must be an int >= 1, got {top_k!r}")
        k = min(top_k, int(self.model.seen_mask.sum()))
        cal = self.calibration or Calibration()
        out: list[Prediction | None] = [None] * len(texts)
        for positions, chunk, inputs in self._batches(texts):
            logits = self.model(inputs).double().cpu()  # (B, C)
            probs, ids = torch.softmax(logits / cal.temperature, dim=1).topk(k, dim=1)  # (B, k)
            sim = self.model.class_similarity(inputs) if cal.needs_similarity else None
            scores = cal.scores(logits, sim)  # (B,)
            routing = self.model.routing(inputs)
            for b, (pos, text) in enumerate(zip(positions, chunk, strict=True)):
                out[pos] = Prediction(
                    text=text,
                    labels=[self.class_names[i] for i in ids[b].tolist()],
                    class_ids=ids[b].tolist(),
                    probabilities=[round(p, 6) for p in probs[b].tolist()],
                    experience=_experience(routing, b),
                    prompt_ids=[] if routing is None else routing.prompt_ids[b].tolist(),
                    key_scores=[] if routing is None else [round(s, 6) for s in routing.key_scores[b].tolist()],
                    score=float(scores[b]),
                    out_of_scope=None if self.calibration is None else bool(scores[b] < cal.threshold),
                )
        return out

    # ---------------------------------------------------------------- calibration
    def calibrate(self, texts: Sequence[str], labels: Sequence[int | str], score: str | None = None,
                  false_rejection: float = DEFAULT_FALSE_REJECTION, source: str = "",
                  similarity_weight: float = DEFAULT_SIMILARITY_WEIGHT) -> Calibration:
        """Fit temperature and threshold on in-scope validation texts (not trained on) and their labels.

        Labels are class names or ids of classes the model has seen. score: one of
        ``SCORES``; None picks ``max_logit+similarity`` for methods with class means, else
        ``max_logit``. The result replaces this predictor's calibration (and the model's:
        ``save`` writes it with the model).
        """
        texts = _check_texts(texts)
        if len(labels) != len(texts):
            raise ValueError(f"calibration needs one label per text: {len(texts)} texts, {len(labels)} labels")
        name_to_id = {n: i for i, n in enumerate(self.class_names)}
        ids = torch.tensor([self._class_id(y, name_to_id) for y in labels], dtype=torch.long)
        seen = self.model.seen_mask.cpu()
        if not bool(seen[ids].all()):
            bad = sorted({self.class_names[i] for i in ids[~seen[ids]].tolist()})
            raise ValueError(f"calibration labels name classes the model has not learned: {bad[:5]}")
        logits, similarity = self.logits_and_similarity(texts)
        if score is None:
            score = DEFAULT_SCORE if similarity is not None else FALLBACK_SCORE
        source = source or f"{len(texts)} in-scope texts"
        self.calibration = calibrate(logits, ids, score, false_rejection, source, similarity, similarity_weight)
        self.model.calibration = self.calibration.to_dict()
        return self.calibration

    def save(self, model_dir: str | Path) -> None:
        """Write the model with its class names and calibration to a new (or empty) folder."""
        path = Path(model_dir)
        if path.exists() and any(path.iterdir()):
            raise FileExistsError(f"{path} is not empty: choose a new folder (nothing is overwritten)")
        self.model.save_pretrained(path)

    def _class_id(self, label: int | str, name_to_id: dict[str, int]) -> int:
        if isinstance(label, str):
            if label not in name_to_id:
                raise ValueError(f"unknown class name {label!r}")
            return name_to_id[label]
        if not is_int(label) or not 0 <= label < len(self.class_names):
            raise ValueError(f"labels must be class names or ids in [0, {len(self.class_names)}), got {label!r}")
        return label


# What method.json's backbone_config may set (what save_method writes, plus a query cache
# inside the folder); anything else would let a shared folder change how the model loads.
_BACKBONE_KEYS = ("name_or_path", "pooling", "max_length", "precision", "query_cache_path", "instruction",
                  "query_encoder", "query_layer")
MAX_LENGTH = 1 << 16


def saved_backbone_config(meta: dict[str, Any], model_dir: str | Path) -> dict[str, Any]:
    """The ``BackboneConfig`` fields saved in a method folder's ``method.json``, checked."""
    what = f"{Path(model_dir) / 'method.json'}: backbone_config"
    saved = meta.get("backbone_config") or {"name_or_path": meta["backbone"].get("name_or_path")}
    unknown = sorted(set(saved) - set(_BACKBONE_KEYS))
    if unknown:
        raise ValueError(f"{what} may set only {list(_BACKBONE_KEYS)}, got {[printable(k) for k in unknown]}")
    saved = dict(saved)
    require(saved.get("name_or_path"), str, f"{what}.name_or_path")
    if "max_length" in saved and not (is_int(saved["max_length"]) and 2 <= saved["max_length"] <= MAX_LENGTH):
        raise ValueError(f"{what}.max_length must be an int in [2, {MAX_LENGTH}], got {saved['max_length']!r}")
    ident = meta["backbone"]
    if "template" in ident:  # a causal LM saved before its pooling and query layer were recorded here
        if saved.get("pooling", "auto") == "auto" and ident.get("pooling") in CAUSAL_POOLINGS:
            saved["pooling"] = ident["pooling"]  # "auto" meant "mean" then
        if "query_layer" not in saved and "query_layer" in ident:
            saved["query_layer"] = "last" if ident["query_layer"] is None else ident["query_layer"]
    if saved.get("query_cache_path") is not None:  # a cache shipped with the model, never a file elsewhere
        saved["query_cache_path"] = str(join_inside(model_dir, saved["query_cache_path"], f"{what}.query_cache_path"))
    return saved


def _experience(routing, b: int) -> int | None:
    if routing is None:
        return None
    e = int(routing.experience[b])
    return None if e < 0 else e


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("texts must be a list of str (got one str: wrap it in a list)")
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty: nothing to predict")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"texts must be str; item {bad[0]} is {type(texts[bad[0]]).__name__}")
    return texts
