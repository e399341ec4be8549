"""CLINC150-10 with the real MiniLM through PromptStrategy (slow: real model and data)."""

import pytest
import torch

from cl_prompts.integrations.avalanche import clinc150_benchmark, evaluate_accuracy, make_strategy


@pytest.mark.slow
def test_ncm_on_clinc150_quick_subset():
    from cl_prompts.backbones import default_backbone
    from cl_prompts.methods import build_model

    backbone = default_backbone()
    bm = clinc150_benchmark(backbone, per_class=10, test_per_class=5)
    method = build_model("ncm", backbone, num_classes=150)
    strategy = make_strategy(method, train_mb_size=64, evaluator=None)
    for exp in bm.train_stream:
        strategy.train(exp)
    accs = [evaluate_accuracy(method, exp, batch_size=128) for exp in bm.test_stream]
    test = torch.utils.data.ConcatDataset([e.dataset for e in bm.test_stream])
    # nearest class mean on frozen MiniLM features: far above chance (0.7 %) on all 150 intents
    assert evaluate_accuracy(method, test) > 70.0, accs
    assert min(accs) > 40.0, accs
