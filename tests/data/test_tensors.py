import pytest
import torch
from torch.utils.data import DataLoader

from cl_prompts.data import TextInputs, TokenizedTextDataset


def test_batches_keep_textinputs_and_move():
    enc = {"input_ids": torch.arange(15).view(5, 3), "attention_mask": torch.ones(5, 3, dtype=torch.long)}
    ds = TokenizedTextDataset(enc, [4, 3, 2, 1, 0])
    x, y = ds[2]
    assert isinstance(x, TextInputs) and torch.equal(x["input_ids"], torch.tensor([6, 7, 8])) and y == 2
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))
    assert isinstance(xb, TextInputs) and xb["input_ids"].shape == (4, 3)
    assert torch.equal(yb, torch.tensor([4, 3, 2, 1]))
    moved = xb.to(torch.float64)
    assert isinstance(moved, TextInputs) and moved["input_ids"].dtype == torch.float64
    sub = ds.subset([4, 0])
    assert torch.equal(sub.targets, torch.tensor([0, 4])) and torch.equal(sub[0][0]["input_ids"], enc["input_ids"][4])


def test_bad_encoding():
    with pytest.raises(TypeError, match="input_ids"):
        TokenizedTextDataset({"x": torch.zeros(2, 3)}, [0, 1])
    with pytest.raises(ValueError, match="targets"):
        TokenizedTextDataset({"input_ids": torch.zeros(2, 3)}, [0, 1, 2])
    with pytest.raises(ValueError, match="2 rows"):
        TokenizedTextDataset({"input_ids": torch.zeros(2, 3), "attention_mask": torch.zeros(3, 3)}, [0, 1])
