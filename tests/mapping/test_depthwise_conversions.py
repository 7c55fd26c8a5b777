"""The bound docs/layers.md quotes for grouped convolutions (``benchmarks/layer_costs.py
--network``): conversions per input vector if only the columns holding weights in each row
tile were converted, checked against a count over the mapped layer's own block-diagonal mask
and against hand counts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from torch import nn

from xbar.mapping.conv_forms import conv2d_form

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "layer_costs.py"


@pytest.fixture(scope="module")
def layer_costs():
    spec = importlib.util.spec_from_file_location("layer_costs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _from_mask(conv: nn.Conv2d, rows: int) -> tuple[int, int]:
    """Brute force over the mapped matrix (rows = in x kh x kw inputs, one column per output
    channel): every column in every row tile, and those with a weight position there."""
    mask = conv2d_form(conv).mask.reshape(conv.out_channels, -1).T   # (rows, columns)
    counted = weighted = 0
    for lo in range(0, mask.shape[0], rows):
        tile = mask[lo:lo + rows]
        counted += tile.shape[1]
        weighted += int((tile != 0).any(0).sum())
    return counted, weighted


@pytest.mark.parametrize("conv, rows", [
    (nn.Conv2d(96, 96, 3, groups=96, bias=False), 128),
    (nn.Conv2d(144, 144, 3, groups=144, bias=False), 128),
    (nn.Conv2d(48, 48, 3, groups=48, bias=False), 64),
    (nn.Conv2d(32, 64, 3, groups=4, bias=False), 128),
    (nn.Conv2d(16, 16, 1, groups=8, bias=False), 5),
])
def test_weighted_columns_match_the_mapped_mask(layer_costs, conv, rows):
    assert layer_costs.weighted_columns(conv, rows) == _from_mask(conv, rows)


def test_hand_counts(layer_costs):
    # 96 depthwise channels x 9 taps = 864 rows: 7 row tiles of 128, every tile converts 96
    # columns (672); tile boundaries 128, 256, ..., 768 each cut one channel's 9 taps (none
    # is a multiple of 9), so 96 + 6 = 102 (channel, tile) pairs hold weights
    assert layer_costs.weighted_columns(nn.Conv2d(96, 96, 3, groups=96), 128) == (672, 102)
    # 144 channels: 1,296 rows, 11 tiles; of the 10 boundaries only 1,152 = 128 x 9 falls
    # between two channels: 144 + 9 = 153
    assert layer_costs.weighted_columns(nn.Conv2d(144, 144, 3, groups=144), 128) == (1584, 153)
    # a dense layer converts only weighted columns already
    dense = nn.Conv2d(64, 32, 3)
    assert layer_costs.weighted_columns(dense, 128) == (5 * 32, 5 * 32)
