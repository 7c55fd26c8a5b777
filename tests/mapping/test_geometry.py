"""xbar.mapping.geometry: LayerSpecs from any torch model by one forward pass with hooks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xbar.mapping.geometry import layer_specs, parse_input_shape
from xbar.config import ArrayConfig, XbarConfig


class TwoBranch(nn.Module):
    """Uses one Linear twice (shared weights) and a functional op between layers."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x).mean(dim=(2, 3))
        return self.fc(torch.relu(self.fc(y)))


def test_conv_and_linear_shapes() -> None:
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 5, stride=2, dilation=1), nn.ReLU(),
                          nn.Flatten(), nn.Linear(32 * 2 * 2, 10))
    a, b, c = layer_specs(model, (3, 16, 16))
    assert (a.name, a.kind, a.n_in, a.n_out, a.in_chw, a.out_hw) == \
        ("0", "conv", 27, 16, (3, 16, 16), (16, 16))
    assert (a.kernel, a.stride, a.padding, a.positions) == ((3, 3), (1, 1), (1, 1), 256)
    assert (b.n_in, b.in_chw, b.out_hw, b.stride) == (400, (16, 8, 8), (2, 2), (2, 2))
    assert (c.kind, c.n_in, c.n_out, c.in_chw, c.out_hw, c.positions) == \
        ("linear", 128, 10, (128, 1, 1), (1, 1), 1)
    assert not any(s.signed_inputs for s in (a, b, c))    # [0, 1) inputs, then ReLUs


def test_tiles_per_layer() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(300, 200), nn.Linear(200, 255))
    f1, f2 = layer_specs(model, (300,))
    assert (f1.row_tiles(XbarConfig()), f1.col_tiles(XbarConfig())) == (3, 2)
    offset = XbarConfig(array=ArrayConfig(weight_mapping="offset"))
    assert (f2.row_tiles(offset), f2.col_tiles(offset)) == (2, 3)   # 127 weight columns


def test_signed_inputs_follow_the_data() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    torch.manual_seed(0)
    with torch.no_grad():
        model[0].bias.fill_(-10.0)                      # the second layer sees negatives
    specs = layer_specs(model, (4,))
    assert [s.signed_inputs for s in specs] == [False, True, False]
    specs = layer_specs(model, (4,), example_input=-torch.ones(1, 4))
    assert specs[0].signed_inputs


def test_same_padding_groups_shared_modules_and_mode_restored() -> None:
    model = TwoBranch()
    model.train()
    specs = layer_specs(model, (3, 9, 9))
    assert [s.name for s in specs] == ["conv", "fc", "fc#2"]
    assert specs[0].out_hw == (5, 5) and specs[0].padding == (1, 1)
    assert model.training
    same = nn.Conv2d(4, 8, 5, padding="same", groups=2)
    (spec,) = layer_specs(same, (4, 7, 7))
    # a grouped conv is one block-diagonal matrix: 4 channels x 25 taps rows, groups = 1
    assert (spec.padding, spec.groups, spec.n_in, spec.out_hw) == ((2, 2), 1, 100, (7, 7))


def test_linear_on_token_sequences_counts_vectors() -> None:
    (spec,) = layer_specs(nn.Linear(16, 4), (5, 16))
    assert (spec.in_chw, spec.out_hw, spec.positions) == ((16, 1, 5), (1, 5), 5)


def test_bad_models_and_shapes() -> None:
    with pytest.raises(ValueError, match=r"fails on an input of shape \(1, 2, 8, 8\).*; "
                                         r"check layer_specs\(input_shape=\(2, 8, 8\)\)$"):
        layer_specs(nn.Conv2d(3, 4, 3), (2, 8, 8))
    with pytest.raises(ValueError, match="no nn.Linear or nn.Conv2d"):
        layer_specs(nn.Sequential(nn.ReLU()), (3, 4, 4))


@pytest.mark.parametrize("text,expected", [("3,32,32", (3, 32, 32)), (" 1, 28 ,28", (1, 28, 28)),
                                           ("784", (784,)), ((3, 8, 8), (3, 8, 8))])
def test_parse_input_shape(text: object, expected: tuple) -> None:
    assert parse_input_shape(text) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["", "3,32,a", "0,3,3", "1,2,3,4", "-1", "3.5,2,2"])
def test_parse_input_shape_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="expected C,H,W"):
        parse_input_shape(text)
