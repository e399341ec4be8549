"""Run one method over a class-incremental stream (text or images): train, evaluate, checkpoint, report.

The loop is deliberately plain PyTorch over the experiences of a dataset (the same class
groups the Avalanche benchmark builders use), so that every random draw is seeded and a
resumed run repeats an uninterrupted one exactly. After every experience: evaluation on
the experiences seen so far (one row of the accuracy matrix; ``eval_every`` thins them
out), then an atomic checkpoint (:mod:`cl_prompts.run.checkpoints`).

The story of one :func:`run`: check the options, load the data, take the out folder
(:mod:`~cl_prompts.run.out_dir`), then :func:`_start` builds the model (or resumes it) into
one :class:`~cl_prompts.run.state.ActiveRun`, :func:`_experiences` trains and evaluates it with
:mod:`~cl_prompts.run.loop` and checkpoints it, and :func:`_finish` writes the results.
None of those modules calls back into this one.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cl_prompts import results as res
from cl_prompts.data.benchmarks import load_benchmark
from cl_prompts.random_state import isolated_rng, seed_everything, thread_independent_math
from cl_prompts.results.loggers import RunLoggers
from cl_prompts.run import checkpoints as ckpt
from cl_prompts.run.config import QUICK, RunConfig
from cl_prompts.run.distributed import Workers, init_workers, rank_device
from cl_prompts.run.loop import (
    evaluate,
    make_stream,
    train_experience,
)
from cl_prompts.run.out_dir import commit_staged, prepare_out_dir, remove_stale_files, run_lock
from cl_prompts.run.state import ActiveRun, RunSetup, RunState

# --test-per-class alone keeps every training sample: a bound no class reaches.
MAX_PER_CLASS = 1 << 30
# From this many experiences on, evaluating after every one warns (the cost is quadratic).
EVAL_COST_WARNING = 50


def run(
    config: RunConfig,
    *,
    backbone=None,
    dataset=None,
    on_experience_end: Callable[[int, RunState], None] | None = None,
) -> dict[str, Any]:
    """Run ``config``; returns the results dict (also written to ``<out>/results.json``).

    backbone / dataset: inject ready-made ones (tests, notebooks); by default they are
    loaded from ``config.backbone`` / ``config.benchmark``. An injected backbone is set
    to ``config.precision``.
    on_experience_end(e, state): called after experience ``e`` (and its checkpoint when one
        was due, ``config.checkpoint_every``) with the
        run's :class:`~cl_prompts.run.state.RunState`, the global RNGs isolated (its random
        draws do not change the rest of the run).

    The run holds a lock on its folder; with ``overwrite`` the old results stay in place
    until the new run has finished (:mod:`cl_prompts.run.out_dir`).
    """
    from cl_prompts.backbones import names_causal_lm
    from cl_prompts.methods.registry import check_method_options, get_method_class, is_causal

    thread_independent_math()
    # a bad method or option is refused before the data and the backbone are loaded
    causal = is_causal(backbone) if backbone is not None else names_causal_lm(config.backbone)
    check_method_options(config.method, config.method_options, causal)
    if dataset is None:
        preprocessing = None
        if config.is_image:  # the images are preprocessed for the backbone
            from cl_prompts.backbones.loading import image_preprocessing

            backbone = backbone if backbone is not None else load_run_backbone(config)
            preprocessing = image_preprocessing(backbone)
        dataset = load_benchmark(config, preprocessing)
    dataset = run_subset(dataset, config)
    out = config.run_dir(dataset.name)
    workers = init_workers(config.device)
    if workers.active:
        refusal = get_method_class(config.method, bool(causal)).data_parallel_refusal
        if refusal:
            raise ValueError(f"{config.method} cannot run data-parallel ({workers.world_size} processes): {refusal}")
        config = dataclasses.replace(config, device=rank_device(config.device))
    setup = RunSetup(config, dataset, backbone, out, out, workers, on_experience_end)
    if not workers.is_main:  # rank 0 holds the folder; the others only read a checkpoint from it
        setup.work = Path(_received_folder(workers))
        return _train_and_evaluate(setup)
    with run_lock(out):
        try:
            remove_stale_files(out)
            setup.work = prepare_out_dir(out, resume=config.resume, overwrite=config.overwrite)
        except Exception as exc:
            workers.broadcast({"error": f"{type(exc).__name__}: {exc}"})  # the other ranks stop too
            raise
        workers.broadcast({"folder": str(setup.work)})
        results = _train_and_evaluate(setup)
        commit_staged(setup.work, out)
    if config.progress:
        print(res.summary_table(results))
        print(f"results: {out / res.RESULTS_FILE}\nplots:   {out}/accuracy_matrix.png, "
              f"{out}/accuracy_over_time.png\ncheckpoint: {ckpt.checkpoint_root(out)}")
    return results


def run_subset(dataset, config: RunConfig):
    """The part of ``dataset`` a run of ``config`` reads: ``--quick``, then the few-shot sizes."""
    if config.quick:
        dataset = dataset.subset(QUICK["per_class"], seed=0, test_per_class=QUICK["test_per_class"])
    if config.train_per_class is not None or config.test_per_class is not None:
        dataset = dataset.subset(config.train_per_class or MAX_PER_CLASS, seed=0, test_per_class=config.test_per_class)
    return dataset


def _received_folder(workers: Workers) -> str:
    """The working folder rank 0 prepared (or its error, raised here too)."""
    message = workers.broadcast(None)
    if "error" in message:
        raise RuntimeError(f"rank 0 could not prepare the run folder: {message['error']}")
    return message["folder"]


def _train_and_evaluate(setup: RunSetup) -> dict[str, Any]:
    """The run itself, writing into ``setup.work``; only rank 0 writes."""
    started = _start(setup)
    if isinstance(started, dict):  # a finished run, resumed: its results as they are
        return started
    try:
        _experiences(started)
        return _finish(started)
    finally:
        started.loggers.close()


def _start(setup: RunSetup) -> ActiveRun | dict[str, Any]:
    """Seed, load the backbone, tokenize, and build the model or resume it from its checkpoint."""
    from cl_prompts.methods import build_model

    config, dataset = setup.config, setup.dataset
    seed_everything(config.seed)
    if str(config.device).startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()  # peak_memory_mb is this run's, not the process's
    backbone = setup.backbone if setup.backbone is not None else load_run_backbone(config)
    backbone = backbone.to(config.device)
    backbone.set_precision(config.precision)
    stream = make_stream(dataset, backbone, config.device)
    n_exp = len(stream.experiences)
    warn_evaluation_cost(n_exp, config.eval_every)
    identity = {
        "method": config.method,
        "num_classes": dataset.num_classes,
        "backbone": backbone.identity(),
        "run": config.identity(),
        "experiences": stream.experiences,
        "data": dataset.fingerprint(),
    }
    if config.resume:
        model, saved = ckpt.load_checkpoint(setup.work, backbone, identity=identity, required_state=RunState.REQUIRED)
        state = RunState.from_dict(saved)
        if state.next_experience == n_exp and (setup.work / res.RESULTS_FILE).is_file():
            if config.progress:
                print(f"{setup.work} holds a finished run; its results are left as they are")
            return res.read_results(setup.work)
        state.resumed_at.append(state.next_experience)
    else:
        model = build_model(config.method, backbone, dataset.num_classes, **dict(config.method_options))
        state = RunState()
    model.set_class_names(dataset.class_names)  # saved with the model: predictions carry names
    if config.label_text is not None:
        if not model.generative:
            raise ValueError(f"label_text gives answer texts to the methods that answer by generation; "
                             f"{config.method} on {config.backbone} reads features")
        from cl_prompts.methods.generative import read_label_texts

        model.set_answer_texts(read_label_texts(config.label_text, dataset.class_names))
    state.world_sizes.append(setup.workers.world_size)  # one per process start
    loggers = RunLoggers(config.log if setup.workers.is_main else [], setup.work, dataclasses.asdict(config),
                         run_name=setup.out.name)
    return ActiveRun(setup, stream, model, state, identity, loggers)


def load_run_backbone(config: RunConfig):
    """The backbone a run of ``config`` uses (its name, text length, precision and causal LM options)."""
    from cl_prompts.backbones import BackboneConfig, load_backbone

    return load_backbone(BackboneConfig(name_or_path=config.backbone, max_length=config.max_length,
                                        precision=config.precision, trust_remote_code=config.trust_remote_code,
                                        instruction=config.instruction, query_encoder=config.query_encoder,
                                        pooling=config.pooling, query_layer=config.query_layer))


def _experiences(active: ActiveRun) -> None:
    """Train and evaluate the experiences left, checkpointing after each one that is due."""
    from tqdm.auto import tqdm

    config, model, state, stream = active.config, active.model, active.state, active.stream
    workers = active.setup.workers
    n_exp = len(stream.experiences)

    def on_loss(value: float) -> None:
        state.train_steps += 1
        active.loggers.loss(state.train_steps, value)

    model.share_observations(workers)  # each rank adds its share of the samples to the statistics
    last_checkpoint, last_write = time.perf_counter(), 0.0
    try:
        for e in range(state.next_experience, n_exp):
            n_batches = -(-len(stream.indices("train", e)) // config.batch_size)
            epochs = config.epochs if model.requires_training else 1
            with tqdm(total=n_batches * epochs, desc=f"exp {e + 1}/{n_exp}", unit="batch",
                      disable=not (config.progress and workers.is_main), leave=False) as bar:
                start = time.perf_counter()
                model.begin_experience(e, stream.experiences[e])
                state.train_samples += train_experience(model, stream, e, config, bar, on_loss, workers)
                model.end_experience(e)
                train_seconds = time.perf_counter() - start
                start = time.perf_counter()
                if config.evaluates_after(e, n_exp):
                    last = e == n_exp - 1
                    acc, task_acc, subsample = evaluate(model, stream, e, config.eval_batch_size, workers,
                                                        subsample=config.eval_subsample, whole=last)
                    if last:
                        state.final_subsample = subsample
                else:
                    acc, task_acc = [None] * (e + 1), [None] * (e + 1)
                eval_seconds = time.perf_counter() - start
            if e == n_exp - 1 and config.calibrate and active.setup.dataset.calibration is not None:
                start = time.perf_counter()
                calibrate_on(model, active.setup.dataset, config)
                state.calibration = {**model.calibration, "seconds": round(time.perf_counter() - start, 1)}
            state.record(acc, task_acc, train_seconds, eval_seconds)
            active.loggers.experience(e, state.train_steps, acc, task_acc)
            state.peak_memory_mb = max(state.peak_memory_mb, res.peak_memory_mb(config.device)[0])
            if config.progress and workers.is_main and acc[0] is not None:
                tqdm.write(f"exp {e + 1}/{n_exp}: avg acc on seen {np.mean(acc):.1f}%")
            # A checkpoint of a wide closed-form model is about 1 GB: config.checkpoint_every
            # says how often; the last one is the saved model.
            due = ckpt.checkpoint_due(config.checkpoint_every, time.perf_counter() - last_checkpoint,
                                      last_write, final=e == n_exp - 1)
            if due:
                start = time.perf_counter()
                if workers.is_main:
                    ckpt.save_checkpoint(active.setup.work, model, experience=e, state=state.to_dict(),
                                         identity=active.identity)
                last_checkpoint = time.perf_counter()
                last_write = last_checkpoint - start
            workers.barrier()  # a rank that fails later finds the checkpoint complete
            if active.setup.on_experience_end is not None:
                with isolated_rng(config.device):  # a callback must not change the rest of the run
                    active.setup.on_experience_end(e, state)
    finally:
        model.share_observations(None)


def calibrate_on(model, dataset, config: RunConfig) -> None:
    """Fit the model's out-of-scope threshold and temperature on the dataset's held-out in-scope data."""
    from cl_prompts.inference import Predictor

    split = dataset.calibration
    predictor = Predictor(model, batch_size=config.eval_batch_size)
    predictor.calibrate(split.texts, split.labels, source=f"{dataset.name}: {len(split)} held-out in-scope texts")


def warn_evaluation_cost(n_exp: int, eval_every: int) -> None:
    """Warn when evaluating after every experience makes the evaluation cost large and quadratic."""
    if eval_every == 1 and n_exp >= EVAL_COST_WARNING:
        warnings.warn(
            f"{n_exp} experiences: evaluating every seen experience after each one reads the test "
            f"data about {n_exp // 2} times over; pass --eval-every N or --eval-final-only to "
            f"evaluate less often", UserWarning, stacklevel=3,
        )


def _finish(active: ActiveRun) -> dict[str, Any]:
    """The results of the finished run; rank 0 also writes them (JSON, plots, summary)."""
    config, dataset, model, state = active.config, active.setup.dataset, active.model, active.state
    n = len(state.accuracy)
    matrix = res.pad_rows(state.accuracy, n)
    extra: dict[str, Any] = {
        "num_classes": dataset.num_classes,
        "eval_split": config.eval_split,
        # what the frozen encoder ran in: config.precision with "auto" resolved on this device
        "precision": model.backbone.precision,
        "train_samples": state.train_samples,
        "experiences": [list(e) for e in dataset.experiences],
        "experience_names": dataset.experience_names(),
        "experience_train_seconds": state.train_seconds,
        "experience_eval_seconds": state.eval_seconds,
        "resumed_at": state.resumed_at,
        # every field of the method's config, defaults included: `--config results.json` repeats the run
        "method_config": model.config.to_dict(),
        # what searched the method's keys (faiss or the torch fallback), None without keys
        "key_search": model.key_search(),
        # out-of-scope threshold and temperature fitted on held-out in-scope data (None: no such data)
        "calibration": state.calibration,
        # processes of each start (a resumed run may have run on another world size)
        "world_sizes": state.world_sizes,
    }
    if any(v is not None for row in state.task_id for v in row):
        tid = res.pad_rows(state.task_id, n)
        extra["task_id_accuracy_matrix"] = tid
        extra["final_task_id_accuracy"] = float(np.mean([v for v in tid[-1] if v is not None]))
    backbone_name = model.backbone.identity().get("name_or_path", config.backbone)
    subsample_matrix = None
    if state.final_subsample is not None:
        subsample_matrix = matrix[:-1] + [state.final_subsample]
        extra["eval_subsample"] = {"per_class": config.eval_subsample, "accuracy_matrix": subsample_matrix}
    results = res.build_results(
        benchmark=dataset.name,
        method=config.method, backbone=str(backbone_name), seed=config.seed,
        accuracy_matrix=matrix, train_seconds=sum(state.train_seconds),
        train_samples=state.train_samples, eval_seconds=sum(state.eval_seconds),
        config=dataclasses.asdict(config), device=config.device, extra=extra,
        forgetting_matrix=subsample_matrix,
    )
    # the largest of every process that worked on the run (a resumed run had several)
    results["peak_memory_mb"] = round(max(results["peak_memory_mb"], state.peak_memory_mb), 1)
    if not active.setup.workers.is_main:  # a rank other than 0: the same results, written by rank 0
        return results
    out = active.setup.work
    res.write_results(results, out / res.RESULTS_FILE)
    if config.plots:
        res.write_plots(matrix, out, title=f"{config.method} on {results['benchmark']}",
                        labels=dataset.experience_names())
    res.atomic_write_text(out / "summary.md", res.summary_table(results))
    return results
