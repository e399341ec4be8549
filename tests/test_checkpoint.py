import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from cl_prompts.run.checkpoints import (
    LATEST,
    capture_rng_state,
    checkpoint_due,
    checkpoint_root,
    has_checkpoint,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)


class Toy(torch.nn.Module):
    """Stands in for a ContinualMethod: save_pretrained + a loader, safetensors + JSON."""

    def __init__(self, n=4):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(n, 3))

    def save_pretrained(self, path):
        path = Path(path)
        path.mkdir(parents=True)
        save_file({"w": self.w.detach().contiguous()}, str(path / "model.safetensors"))
        (path / "config.json").write_text(json.dumps({"n": self.w.shape[0]}))


def toy_loader(path, backbone):
    cfg = json.loads((Path(path) / "config.json").read_text())
    m = Toy(cfg["n"])  # draws random numbers: RNG must be restored after this
    m.w.data.copy_(load_file(str(Path(path) / "model.safetensors"))["w"])
    return m


IDENT = {"method": "toy", "num_classes": 6, "backbone": {"hidden_size": 32, "model_type": "bert"}}


def test_rng_round_trip():
    tensors, meta = capture_rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    json.dumps(meta)  # JSON-able
    torch.rand(5), np.random.rand(5), random.random()
    restore_rng_state(tensors, meta)
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1])
    assert expected[2] == got[2]


def test_save_load_restores_weights_state_and_rng(tmp_path):
    m = Toy()
    save_checkpoint(tmp_path, m, experience=1, state={"next_experience": 2}, identity=IDENT)
    after_save = torch.rand(4)
    torch.rand(100)  # move the RNG on, as a crashed process would have
    loaded, state = load_checkpoint(tmp_path, None, identity=IDENT, loader=toy_loader)
    assert torch.equal(loaded.w, m.w)
    assert state == {"next_experience": 2}
    assert torch.equal(torch.rand(4), after_save)


def test_only_latest_folder_kept_and_pointer_updated(tmp_path):
    m = Toy()
    first = save_checkpoint(tmp_path, m, experience=0, state={"n": 0}, identity=IDENT)
    second = save_checkpoint(tmp_path, m, experience=1, state={"n": 1}, identity=IDENT)
    root = checkpoint_root(tmp_path)
    assert not first.exists() and second.exists()
    assert json.loads((root / LATEST).read_text())["dir"] == second.name
    assert sorted(p.name for p in root.iterdir()) == sorted([LATEST, second.name])


def test_failed_save_keeps_previous_checkpoint_valid(tmp_path):
    good = Toy()
    save_checkpoint(tmp_path, good, experience=0, state={"n": 0}, identity=IDENT)

    class Broken(Toy):
        def save_pretrained(self, path):
            super().save_pretrained(path)
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, Broken(), experience=1, state={"n": 1}, identity=IDENT)
    loaded, state = load_checkpoint(tmp_path, None, identity=IDENT, loader=toy_loader)
    assert state == {"n": 0} and torch.equal(loaded.w, good.w)
    assert not any(p.name.startswith(".tmp") for p in checkpoint_root(tmp_path).iterdir())


@pytest.mark.parametrize(
    "change, match",
    [
        ({"method": "l2p"}, "mismatch in method"),
        ({"num_classes": 7}, "mismatch in num_classes"),
        ({"backbone": {"hidden_size": 64, "model_type": "bert"}}, r"backbone\.hidden_size"),
        ({"backbone": {"hidden_size": 32, "model_type": "vit"}}, r"backbone\.model_type"),
    ],
)
def test_identity_mismatch_refused(tmp_path, change, match):
    save_checkpoint(tmp_path, Toy(), experience=0, state={}, identity=IDENT)
    with pytest.raises(ValueError, match=match):
        load_checkpoint(tmp_path, None, identity={**IDENT, **change}, loader=toy_loader)


def test_truncated_weights_refused(tmp_path):
    folder = save_checkpoint(tmp_path, Toy(), experience=0, state={}, identity=IDENT)
    f = folder / "model" / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-7])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        load_checkpoint(tmp_path, None, identity=IDENT, loader=toy_loader)


def test_corrupted_pointer_and_missing_checkpoint(tmp_path):
    assert not has_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path, None, identity=IDENT, loader=toy_loader)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_checkpoint(tmp_path / "nope", None, identity=IDENT, loader=toy_loader)
    save_checkpoint(tmp_path, Toy(), experience=0, state={}, identity=IDENT)
    assert has_checkpoint(tmp_path)
    (checkpoint_root(tmp_path) / LATEST).write_text("{not json")
    with pytest.raises(ValueError, match="pointer .* corrupted"):
        load_checkpoint(tmp_path, None, identity=IDENT, loader=toy_loader)


@pytest.mark.parametrize(("every", "since_last", "last_write", "due"), [
    (0, 0.0, 9.0, True),  # 0: after every experience
    (120, 119.0, 0.0, False), (120, 120.0, 0.0, True),  # seconds: once that long has passed
    ("auto", 0.0, 0.0, True),  # nothing written yet
    ("auto", 0.1, 0.9, True),  # a quick write: after every experience
    ("auto", 99.0, 5.0, False), ("auto", 100.0, 5.0, True),  # a slow one: 20 times its time first
])
def test_checkpoint_due(every, since_last, last_write, due):
    assert checkpoint_due(every, since_last, last_write, final=False) is due
    assert checkpoint_due(every, since_last, last_write, final=True)  # the saved model: always
