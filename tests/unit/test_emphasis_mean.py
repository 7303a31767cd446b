"""The "Original" emphasis mean restore, and its guard against a chunk whose mean is ~0."""

import torch

from pipelines.prompts.encode import _restore_mean


def test_the_mean_is_restored():
    row = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    weighted = row * torch.tensor([[1.5], [1.0]])
    restored = _restore_mean(row, weighted)
    assert torch.allclose(restored.mean(), row.mean()) and torch.allclose(restored / weighted, restored[0, 0] /
                                                                          weighted[0, 0])


def test_a_zero_mean_chunk_keeps_its_plain_weighting_instead_of_blowing_up():
    row = torch.tensor([[1.0, -1.0], [2.0, -2.0]])  # mean 0, as a random encoder's output can be
    weighted = row * torch.tensor([[1.5], [1.0]])
    out = _restore_mean(row, weighted)
    assert torch.isfinite(out).all() and torch.equal(out, weighted)
