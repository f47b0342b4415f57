"""MultiScaleFusion: shapes, widths, and that every output hears every input scale."""
from __future__ import annotations

import pytest
import torch

from prn_core.models.fusion import MultiScaleFusion


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _maps(channels, size=(16, 24), batch=2, grad=False):
    gen = torch.Generator().manual_seed(0)
    return [
        torch.randn(batch, c, size[0] // 2**i, size[1] // 2**i, generator=gen).requires_grad_(grad)
        for i, c in enumerate(channels)
    ]


@pytest.mark.parametrize("size", [(16, 16), (16, 24), (32, 8)])
def test_outputs_keep_each_resolution_with_new_widths(size):
    msf = MultiScaleFusion((3, 5, 7), (4, 8, 16))
    outputs = msf(_maps((3, 5, 7), size))
    assert [tuple(o.shape) for o in outputs] == [
        (2, c, size[0] // 2**i, size[1] // 2**i) for i, c in enumerate((4, 8, 16))
    ]
    assert all((o >= 0).all() for o in outputs)  # ends in ReLU


def test_every_output_depends_on_every_input():
    msf = MultiScaleFusion((4, 8, 16), (4, 8, 16)).eval()
    for j in range(3):
        inputs = _maps((4, 8, 16), grad=True)
        msf(inputs)[j].sum().backward()
        assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in inputs), f"output {j}"


def test_identity_path_when_widths_match_and_paths_built_per_pair():
    msf = MultiScaleFusion((4, 8, 16), (4, 8, 16))
    assert all(isinstance(msf.paths[j][j], torch.nn.Identity) for j in range(3))
    down_two = msf.paths[2][0]  # stride 4 -> stride 16: two stride-2 convs
    assert sum(isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2) for m in down_two.modules()) == 2


def test_mismatched_scale_counts_raise():
    with pytest.raises(ValueError, match="as many input as output"):
        MultiScaleFusion((4, 8), (4, 8, 16))
    with pytest.raises(ValueError, match="expects 3 maps"):
        MultiScaleFusion((4, 8, 16), (4, 8, 16))(_maps((4, 8)))
