"""Suite-wide settings."""

import pytest
import torch

# Tests use tiny models (width 32): threads buy nothing, and OpenMP spinning on a busy
# 2-core machine made them several times slower.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_run():
    """``tiny_run(out, method, options, dataset)``: a runner run on the tiny BERT; returns the results."""
    from cl_prompts.backbones.testing import tiny_text_backbone
    from cl_prompts.run.runner import RunConfig, run

    def train(out, method: str, options: dict, dataset) -> dict:
        cfg = RunConfig(method=method, backbone="tiny-bert", out=str(out), progress=False,
                        batch_size=8, plots=False, method_options=options)
        return run(cfg, backbone=tiny_text_backbone(), dataset=dataset)

    return train
