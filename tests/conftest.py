"""Suite-wide settings and fixtures."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

# Tests use tiny models (width 32): threads buy nothing, and OpenMP spinning on a busy
# 2-core machine made them several times slower.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_run():
    """``tiny_run(out, method, options, dataset)``: a runner run on the tiny BERT; returns the results."""
    from cl_prompts.backbones.testing import tiny_text_backbone
    from cl_prompts.run import RunConfig, run

    def train(out, method: str, options: dict, dataset) -> dict:
        cfg = RunConfig(method=method, backbone="tiny-bert", out=str(out), progress=False,
                        batch_size=8, plots=False, method_options=options)
        return run(cfg, backbone=tiny_text_backbone(), dataset=dataset)

    return train


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="session")
def benchmark_script():
    """``benchmark_script(name)``: a fresh module of ``benchmarks/<name>.py`` (scripts are not a package)."""

    def load(name: str):
        path = BENCHMARKS / f"{name}.py"
        assert path.is_file(), f"no benchmark script {path}"
        if str(BENCHMARKS) not in sys.path:  # the scripts import their neighbours (suites.py, ...)
            sys.path.insert(0, str(BENCHMARKS))
        spec = importlib.util.spec_from_file_location(f"{name}_script", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture()
def optimizer_spies(monkeypatch):
    """Records every gradient clip as (threshold, norm before, norm after) and every lr schedule
    built by the runner or PromptPoolPlugin as (schedule, steps); returns the two lists."""
    import cl_prompts.integrations.plugin as plugin
    import cl_prompts.run.loop as loop

    clipped, schedules = [], []
    real_clip, real_schedule = torch.nn.utils.clip_grad_norm_, loop.make_lr_schedule

    def spy_clip(params, max_norm, *a, **kw):
        params = list(params)
        before = real_clip(params, max_norm, *a, **kw)
        after = torch.cat([p.grad.reshape(-1) for p in params if p.grad is not None]).norm()
        clipped.append((max_norm, float(before), float(after)))
        return before

    def spy_schedule(optimizer, config, steps):
        schedules.append((real_schedule(optimizer, config, steps), steps))
        return schedules[-1][0]

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy_clip)
    monkeypatch.setattr(loop, "make_lr_schedule", spy_schedule)
    monkeypatch.setattr(plugin, "make_lr_schedule", spy_schedule)
    return clipped, schedules
