"""Flash-LLM-style sparse GEMM: the tiled compressed format and the load-sparse/compute-dense kernel."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels import sparse_gemm


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 90), st.integers(1, 90), st.floats(0.0, 1.0), st.integers(0, 2**31 - 1))
def test_compress_roundtrip_and_counts(k, n, sparsity, seed):
    g = torch.Generator().manual_seed(seed)
    w = sparse_gemm.random_sparse(k, n, sparsity, dev="cpu", generator=g)
    c = sparse_gemm.compress(w, (32, 32))
    assert torch.equal(sparse_gemm.decompress(c), w)
    nnz = int((w != 0).sum())
    assert c["values"].numel() == nnz == int(c["offsets"][-1])          # only non-zeros are stored
    assert c["positions"].dtype == torch.int16
    if nnz:
        assert (c["values"] != 0).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("sparsity", [0.5, 0.9])
def test_sparse_gemm_matches_dense_reference(dtype, sparsity, poisoned, assert_close):
    g = torch.Generator().manual_seed(int(sparsity * 100))
    w = sparse_gemm.random_sparse(100, 70, sparsity, dtype, "cpu", g)
    a = torch.randn(20, 100, generator=g).to(dtype)
    out = poisoned((20, 70), dtype)
    sparse_gemm.matmul(a, sparse_gemm.compress(w), out=out)
    assert_close(out, sparse_gemm.reference(a, w))


def test_empty_tiles_give_zero(poisoned, assert_close):
    w = torch.zeros(64, 64, dtype=torch.float16)
    w[3, 5] = 2.0                                   # one non-zero in one tile, all others empty
    a = torch.randn(16, 64, generator=torch.Generator().manual_seed(0)).half()
    out = poisoned((16, 64), torch.float16)
    sparse_gemm.matmul(a, sparse_gemm.compress(w), out=out)
    assert_close(out, sparse_gemm.reference(a, w))


def test_weight_bytes_fall_with_sparsity():
    c = {s: sparse_gemm.compress(sparse_gemm.random_sparse(128, 128, s, dev="cpu",
                                                            generator=torch.Generator().manual_seed(1)))
         for s in (0.5, 0.8)}
    size = {s: v["values"].numel() * 2 + v["positions"].numel() * 2 for s, v in c.items()}
    assert size[0.8] < 0.5 * size[0.5]              # 20% vs 50% of the weights kept
