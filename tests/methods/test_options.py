"""Method config options: every field has help text and a check; shared options check alike."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cl_prompts.methods import get_method_class, list_methods
from cl_prompts.methods.options import option_help

CONFIGS = {name: get_method_class(name).config_class for name in list_methods()}

# A bad value for each option that several methods share, and the message it must give.
SHARED_BAD = {
    "lr": (0.0, ValueError, "lr must be > 0"),
    "weight_decay": (-0.1, ValueError, "weight_decay must be >= 0"),
    "optimizer": ("lion", ValueError, r"optimizer must be one of \['adam', 'adamw', 'sgd'\]"),
    "prompt_init": ("zeros", ValueError, r"prompt_init must be one of \['uniform', 'normal'\]"),
    "prompt_init_scale": (float("inf"), ValueError, "prompt_init_scale must be finite"),
    "index": ("", TypeError, "index must be a non-empty string"),
    "feature": ("cls", ValueError, r"feature must be one of \['pooled', 'prompt'\]"),
    "mask_absent": (1, TypeError, "mask_absent must be a bool"),
    "head": ("mlp", ValueError, r"head must be one of \['linear', 'cosine'\]"),
    "head_scale": (0, ValueError, "head_scale must be > 0"),
    "layers": (True, TypeError, "layers must be an int"),
    "prompt_length": (2.5, TypeError, "prompt_length must be an int"),
    "pull_coef": (-1, ValueError, "pull_coef must be >= 0"),
    "projection_dim": (0, ValueError, "projection_dim must be > 0"),
    "normalize": ("yes", TypeError, "normalize must be a bool"),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_option_has_help_and_a_check(name):
    for field in dataclasses.fields(CONFIGS[name]):
        assert len(option_help(field)) > 10, f"{name}.{field.name} has no help text"
        assert field.metadata.get("check") is not None, f"{name}.{field.name} is not checked"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_shared_options_refuse_bad_values_in_every_method(name):
    config_class = CONFIGS[name]
    fields = {f.name for f in dataclasses.fields(config_class)}
    checked = 0
    for option, (bad, exc, match) in SHARED_BAD.items():
        if option not in fields or (name == "coda_prompt" and option == "layers"):
            continue  # coda_prompt's ``layers`` are layer indices (tested below)
        with pytest.raises(exc, match=match):
            config_class(**{option: bad})
        checked += 1
    assert checked >= 3, f"{name} shares too few options for this test to mean anything"


def test_layer_indices_are_normalised_to_tuples_and_checked():
    coda = CONFIGS["coda_prompt"]
    assert coda(layers=[3, 1]).layers == (3, 1)
    with pytest.raises(ValueError, match="layers must not repeat a layer"):
        coda(layers=[1, 1])
    with pytest.raises(ValueError, match="layers must not be empty"):
        coda(layers=[])
    with pytest.raises(TypeError, match="layers must be a sequence of ints"):
        coda(layers="01")
    dual = CONFIGS["dualprompt"]
    assert dual(g_layers=[]).g_layers == ()
    with pytest.raises(ValueError, match="must not share layers"):
        dual(g_layers=[2], e_layers=[2, 3])


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_configs_survive_json(name):
    config = CONFIGS[name]()
    again = CONFIGS[name](**json.loads(json.dumps(config.to_dict())))
    assert again == config


def test_method_specific_checks():
    with pytest.raises(ValueError, match=r"top_k must be <= pool_size \(4\)"):
        CONFIGS["l2p"](pool_size=4, top_k=5)
    with pytest.raises(ValueError, match="prompt_length must be even"):
        CONFIGS["coda_prompt"](prompt_length=5)
    with pytest.raises(ValueError, match=r"shrinkage must be in \(0, 1\)"):
        CONFIGS["slda"](shrinkage=1.0)
    assert CONFIGS["ranpac"](projection_seed=0).projection_seed == 0
    with pytest.raises(ValueError, match="projection_seed must be >= 0"):
        CONFIGS["ranpac"](projection_seed=-1)
