"""The same guarantees on a GPU (SDPA picks other kernels there); skipped without CUDA."""

import pytest
import torch

from .conftest import _tiny, make_inputs, single

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
ATOL = 1e-4  # GPU SDPA kernels reorder sums


@pytest.fixture(params=["bert", "distilbert", "vit", "deit"])
def cuda_backbone(request):
    import copy

    bb = copy.deepcopy(_tiny(request.param)).to("cuda")
    bb.clear_query_cache()
    return bb


def to_cuda(x):
    return {k: v.cuda() for k, v in x.items()} if isinstance(x, dict) else x.cuda()


def test_padded_batch_equals_single_on_cuda(cuda_backbone):
    bb = cuda_backbone
    x = to_cuda(make_inputs(bb))
    gen = torch.Generator().manual_seed(0)
    p = torch.randn(3, 2, 32, generator=gen).cuda()
    k = {0: torch.randn(3, 2, 3, 32, generator=gen).cuda()}
    batch = bb(x, input_prompts=p, prefix_prompts=k)
    for i in range(3):
        alone = bb(single(x, i), input_prompts=p[i : i + 1], prefix_prompts={0: k[0][i : i + 1]})
        assert torch.allclose(batch.pooled[i], alone.pooled[0], atol=ATOL)
        assert torch.allclose(batch.prompt_pooled[i], alone.prompt_pooled[0], atol=ATOL)


def test_cache_and_gradients_on_cuda(cuda_backbone):
    bb = cuda_backbone
    x = to_cuda(make_inputs(bb))
    plain = bb.query_features(x, use_cache=False)
    assert plain.device.type == "cuda"
    assert torch.allclose(bb.query_features(x, use_cache=True), plain, atol=1e-6)
    assert torch.equal(bb.query_features(x, use_cache=True), bb.query_features(x, use_cache=True))
    p = torch.randn(1, 2, 32, device="cuda", requires_grad=True)
    out = bb(x, input_prompts=p)
    (out.prompt_pooled @ torch.randn(32, device="cuda")).sum().backward()
    assert p.grad.abs().sum() > 0
    assert all(q.grad is None for q in bb.parameters())
