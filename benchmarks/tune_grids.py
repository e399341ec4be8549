"""The grids ``tune.py`` tries: option -> values per method, for encoders and for causal LMs."""

from __future__ import annotations

from typing import Any

# The grid of each method: option -> values, trials are the product in this order; a list
# of such grids is their union (a later, narrower grid around an earlier choice).
Grid = dict[str, list[Any]]
GRIDS: dict[str, Grid | list[Grid]] = {
    "ranpac": [{"layers": [1, 2, 4], "ridge": [10.0, 100.0, 300.0, 1000.0], "projection_dim": [5000]},
               # RanPAC's own width (10,000) with the deepest feature choices
               {"layers": [4, 6], "ridge": [100.0], "projection_dim": [10000]}],
    "slda": {"layers": [1, 2, 4], "shrinkage": [1e-6, 1e-5, 1e-4, 1e-3, 1e-2]},
    "ncm": {"layers": [1, 2, 4], "metric": ["cosine", "euclidean"]},
    # layers 4 came from an earlier grid ({"layers": [1, 4], "candidates", "fusion_weight"}:
    # benchmarks/results/tune-growing_pool); these re-chose the routing and fusion with it, the
    # second with ranpac's choice of 10,000 random features.
    # cross_task_passes 0 pins what those grids ran with (its default is 2 since the last grid).
    "growing_pool": [{"ridge": [100.0, 300.0], "candidates": [1, 2, 3], "fusion_weight": [0.25, 0.5, 1.0, 2.0],
                      "projection_dim": [5000], "cross_task_passes": [0]},
                     {"ridge": [100.0], "projection_dim": [10000], "candidates": [1, 2, 3],
                      "fusion_weight": [0.5, 1.0, 2.0], "cross_task_passes": [0]},
                     # one epoch is about 40 optimiser steps per task: whether faster prompt
                     # learning sharpens the prompted readout
                     {"ridge": [100.0], "projection_dim": [10000], "lr": [3e-2, 1e-1], "candidates": [1, 2, 3],
                      "fusion_weight": [0.5, 1.0, 2.0], "cross_task_passes": [0]},
                     # the prompted readout also fitted on samples through earlier tasks' prompts
                     {"ridge": [100.0], "projection_dim": [10000], "cross_task_passes": [2], "candidates": [1, 2, 3],
                      "fusion_weight": [0.5, 1.0, 2.0]},
                     # a quarter of the prompted compute (8 tokens), and the head that trains the prompts
                     {"ridge": [100.0], "projection_dim": [10000], "cross_task_passes": [2], "prompt_length": [8],
                      "head": ["cosine", "linear"], "candidates": [2], "fusion_weight": [0.5]}],
    # The paper methods and the references: each grid's first trial is the paper's (or the
    # documented) configuration; the rest are the choices a text user would try first: the
    # official code's key initialisation and E-prompt copy, a separate head learning rate
    # (one epoch is about 40 steps per task, little for a head at a prompt's rate), the
    # classifier feature, shorter prompts for short inputs, the lr.
    "dualprompt": [{"key_init": ["as_prompts", "jax_uniform"]},
                   {"key_init": ["jax_uniform"], "copy_previous_prompt": [True], "head_lr": [None, 1e-2, 3e-2]},
                   # one option at a time around that choice: the official code's clipping, a schedule
                   *({"key_init": ["jax_uniform"], "copy_previous_prompt": [True], "head_lr": [3e-2], **g}
                     for g in ({"grad_clip": [1.0]}, {"lr_schedule": ["cosine"]}))],
    "l2p": [{"key_init": ["as_prompts", "jax_uniform"], "feature": ["prompt", "pooled"]},
            {"key_init": ["as_prompts"], "feature": ["pooled"], "head_lr": [1e-2]},  # the head below lr 0.03
            # the official code's clipping at 1.0: the paper's configuration in full, then the choice above
            {"key_init": ["as_prompts"], "feature": ["prompt"], "grad_clip": [1.0]},
            {"key_init": ["as_prompts"], "feature": ["pooled"], "head_lr": [1e-2], "grad_clip": [1.0]}],
    "coda_prompt": [{"lr": [1e-3, 1e-2], "head_lr": [None, 1e-2]},
                    {"lr": [1e-3], "head_lr": [1e-2], "lr_schedule": ["cosine"]}],  # its paper's schedule
    "prompt_tuning": {"prompt_length": [20, 5], "head_lr": [None, 3e-2]},
    "linear_probe": [{"lr": [1e-2, 3e-2, 1e-1], "head": ["linear", "cosine"]},
                     {"lr": [3e-3], "head": ["linear", "cosine"]},  # below the grid's best edge
                     {"lr": [1e-2], "head": ["cosine"], "lr_schedule": ["cosine"]}],
    "joint": [{"lr": [1e-2, 3e-2], "head": ["linear", "cosine"]},
              {"lr": [3e-3], "head": ["cosine"]}],  # below the grid's best edge
    # the forgetting reference: its documented rates and slower ones (a smaller step per task
    # moves the shared encoder and head less); no logit masking, which would make it another method
    "finetune": {"lr": [2e-5, 5e-6], "head_lr": [1e-3, 1e-4]},
}
# Options added to a method's grid after trials were recorded without them, with the value
# those trials ran with: a recorded trial that lacks one counts as having that value.
ADDED_OPTIONS: dict[str, dict[str, Any]] = {
    "ranpac": {"layers": 1, "projection_dim": 5000},
    "slda": {"layers": 1},
    "ncm": {"layers": 1},
    "growing_pool": {"layers": 1, "projection_dim": 5000, "lr": 1e-2, "cross_task_passes": 0, "prompt_length": 32,
                     "head": "cosine"},
    "dualprompt": {"copy_previous_prompt": False, "head_lr": None, "grad_clip": None, "lr_schedule": "constant"},
    "linear_probe": {"lr_schedule": "constant"},
    "coda_prompt": {"lr_schedule": "constant"},
    "l2p": {"head_lr": None, "grad_clip": None},
}
# Options that only change predictions, not what is trained or accumulated: one run is
# trained per setting of the other options, and each of these is evaluated on its final
# model (the final row of the accuracy matrix, which is all final accuracy needs).
PREDICTION_ONLY: dict[str, tuple[str, ...]] = {"growing_pool": ("candidates", "fusion_weight")}
# On a causal LM (``--backbone smollm2``) the prompt methods share one optimiser setting
# (Adam at 3e-2, HF PEFT's prompt tuning examples) that was not chosen on validation: each
# gets the same budget, its default rate and the rates a decade either side; `finetune` its
# documented 2e-5 and the rates either side. `growing_pool`'s prediction options are chosen
# on its trained runs by explore_llm_fusion.py and choose_llm_fusion.py.
CAUSAL_GRIDS: dict[str, Grid | list[Grid]] = {
    "prompt_tuning": {"lr": [3e-2, 3e-3, 3e-1]},
    "progressive_prompts": {"lr": [3e-2, 3e-3, 3e-1]},
    "l2p": {"lr": [3e-2, 3e-3, 3e-1]},
    "finetune": {"lr": [2e-5, 5e-6, 5e-5]},
}
