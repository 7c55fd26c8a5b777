"""Zoo networks with the layers of issue 23: residual and depthwise CNNs for CIFAR-10, an
LSTM and a small transformer for MNIST. Narrow versions, sized to train on one CPU core in a
few minutes (:data:`xbar.mapping.data.train.DEFAULT_RECIPES`); each states its width.

* ``resnet18-narrow``: ResNet-18 (He et al., CVPR 2016) in its CIFAR form (a 3x3 stem, no
  max-pool; four stages of two basic blocks, strides 1, 2, 2, 2; 1x1 projection shortcuts
  where the shape changes; global average pooling; one Linear), at 1/8 of the widths: 8, 16,
  32, 64 channels instead of 64-512 (about 1/64 of the MACs).
* ``mobilenetv2-narrow``: MobileNetV2-style (Sandler et al., CVPR 2018) inverted residual
  blocks (1x1 expansion x6, 3x3 depthwise, 1x1 linear projection, residual add when the shape
  allows), ReLU6, at width multiplier 0.25 and 7 blocks instead of 17 (channels 16-8-8-16-16-
  24-24-32, head 256), strides 1, 1, 2, 1, 2, 1, 2 for 32x32 inputs.
* ``lstm-rows``: MNIST rows as a 28-step sequence of 28 pixels through a one-layer LSTM with
  64 hidden units; the last step's state to a Linear.
* ``transformer-patches``: MNIST as 49 tokens of 4x4 patches, a Linear patch embedding to
  d = 32 plus a learned position table (an ``nn.Embedding``, a digital look-up), two
  post-norm Transformer encoder layers (2 heads, feed-forward 64, GELU, no dropout), mean
  pooling, a Linear head.

Unlike the plain zoo models these see signed inputs after their first layer (LSTM states,
attention outputs, linear bottlenecks): two DAC passes per MVM, as
:class:`xbar.config.DACConfig` says.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["resnet18_narrow", "mobilenetv2_narrow", "lstm_rows", "transformer_patches"]


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers and a shortcut (1x1 conv-BN where the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNet18(nn.Module):
    """CIFAR ResNet-18 with stage widths ``widths`` (module docstring)."""

    def __init__(self, n_classes: int = 10, widths: tuple[int, ...] = (8, 16, 32, 64)) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU())
        blocks, c = [], widths[0]
        for i, w in enumerate(widths):
            for j in range(2):
                blocks.append(BasicBlock(c, w, 2 if i and not j else 1))
                c = w
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


class InvertedResidual(nn.Module):
    """1x1 expand - 3x3 depthwise - 1x1 linear projection, residual when shapes match."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int = 6) -> None:
        super().__init__()
        hidden = c_in * expand
        self.use_residual = stride == 1 and c_in == c_out
        self.body = nn.Sequential(
            nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.use_residual else y


class MobileNetV2(nn.Module):
    """The MobileNetV2-style network of the module docstring."""

    SETTINGS = ((8, 1), (8, 1), (16, 2), (16, 1), (24, 2), (24, 1), (32, 2))
    """(output channels, stride) of each inverted residual block."""

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16),
                                  nn.ReLU6())
        blocks, c = [], 16
        for c_out, stride in self.SETTINGS:
            blocks.append(InvertedResidual(c, c_out, stride))
            c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Conv2d(c, 256, 1, bias=False), nn.BatchNorm2d(256),
                                  nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(256, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head(self.blocks(self.stem(x))))


class LSTMRows(nn.Module):
    """MNIST rows as a sequence through an LSTM (module docstring)."""

    def __init__(self, n_classes: int = 10, hidden: int = 64) -> None:
        super().__init__()
        self.rnn = nn.LSTM(28, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x.reshape(x.shape[0], 28, 28))
        return self.fc(out[:, -1])


class PatchTransformer(nn.Module):
    """MNIST 4x4 patches as tokens through a small Transformer encoder (module docstring)."""

    def __init__(self, n_classes: int = 10, d: int = 32, patch: int = 4) -> None:
        super().__init__()
        self.patch = patch
        tokens = (28 // patch) ** 2
        self.embed = nn.Linear(patch * patch, d)
        self.position = nn.Embedding(tokens, d)
        layer = nn.TransformerEncoderLayer(d, 2, 2 * d, dropout=0.0, activation="gelu",
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.fc = nn.Linear(d, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch
        tokens = nn.functional.unfold(x, p, stride=p).transpose(1, 2)   # (N, 49, 16)
        ids = torch.arange(tokens.shape[1], device=x.device)
        h = self.encoder(self.embed(tokens) + self.position(ids))
        return self.fc(h.mean(1))


def resnet18_narrow(n_classes: int = 10) -> nn.Module:
    return ResNet18(n_classes)


def mobilenetv2_narrow(n_classes: int = 10) -> nn.Module:
    return MobileNetV2(n_classes)


def lstm_rows(n_classes: int = 10) -> nn.Module:
    return LSTMRows(n_classes)


def transformer_patches(n_classes: int = 10) -> nn.Module:
    return PatchTransformer(n_classes)
