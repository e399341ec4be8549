"""What a saved method's tensors are written from: each with a storage of its own, copied only when needed."""

import torch
from safetensors.torch import load_file, save_file

from cl_prompts.methods.saving import _unshared


def test_only_tensors_sharing_a_storage_or_viewing_part_of_one_are_copied(tmp_path):
    big = torch.randn(6, 4)
    state = {"big": big, "tied": big, "row": big[2], "transposed": torch.randn(3, 5).T}
    out = _unshared(state)
    assert out["big"].data_ptr() == big.data_ptr()  # a whole, unshared tensor is written as it is
    ptrs = [v.untyped_storage().data_ptr() for v in out.values()]
    assert len(set(ptrs)) == len(ptrs)  # every other one got its own storage
    assert all(v.is_contiguous() for v in out.values())
    save_file(out, str(tmp_path / "w.safetensors"))  # safetensors refuses shared storage
    back = load_file(str(tmp_path / "w.safetensors"))
    assert all(torch.equal(back[k], state[k]) for k in state)
