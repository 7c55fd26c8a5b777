"""A mapped network as the timing engine sees it: layer shapes, never weight values.

:func:`xbar.mapping.geometry.layer_specs` builds the list from any PyTorch model; tests and
scripts can write :class:`LayerSpec` by hand.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from xbar.config import XbarConfig
from xbar.errors import ConfigError

LAYER_KINDS = ("linear", "conv", "recurrent")


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _pos_int(name: str, field: str, value: Any, lo: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < lo:
        raise ConfigError(f"LayerSpec {name!r}: {field} = {value!r} is invalid; allowed: an "
                         f"integer >= {lo}")


@dataclass(frozen=True)
class LayerSpec:
    """One weight layer (nn.Linear or nn.Conv2d) of a mapped network.

    Layers run as a chain in the order of the list: each layer's input is the previous
    layer's output after its activation and pooling (the first layer's input is the network
    input). A conv layer computes one output row (``out_w`` positions) per step; a Linear layer
    computes its ``out_w`` vectors (1 for a plain (N, F) input) in one step. A recurrent layer
    (the recurrent matrix of an RNN/GRU/LSTM, :mod:`xbar.mapping.recurrent`) computes one
    vector per time step, one output row per step, and starts step t + 1 only when step t has
    gone through the reduction and activation units (its gates and state), so its steps never
    overlap.

    Attributes:
        name: Layer name (the module's qualified name in the PyTorch model).
        kind: ``"linear"``, ``"conv"`` or ``"recurrent"``.
        n_in: Rows of the weight matrix of one group: in_features, or
            in_channels / groups * kh * kw.
        n_out: Output features or channels (all groups).
        in_chw: Input feature map (channels, height, width) of one inference. A Linear
            layer's input is (in_features, 1, vectors); a recurrent layer's (hidden size,
            steps, 1).
        out_hw: Output positions as (rows, columns); (1, vectors) for a Linear layer,
            (steps, 1) for a recurrent one.
        kernel: (kh, kw); (1, 1) for Linear.
        stride: (sh, sw).
        padding: (top, left) zero padding.
        dilation: (dh, dw).
        groups: Convolution groups; each group is its own weight matrix of n_in rows and
            n_out / groups columns, mapped on its own tiles.
        signed_inputs: The layer's inputs can be negative: two input passes per MVM (the
            positive part, then the negative part), as :class:`xbar.config.DACConfig` says.
    """

    name: str
    kind: str
    n_in: int
    n_out: int
    in_chw: tuple[int, int, int]
    out_hw: tuple[int, int]
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    signed_inputs: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"LayerSpec.name = {self.name!r} is invalid; allowed: a "
                             "non-empty string")
        if self.kind not in LAYER_KINDS:
            raise ConfigError(f"LayerSpec {self.name!r}: kind = {self.kind!r} is invalid; "
                             f"allowed: one of {LAYER_KINDS}")
        for fld, lo in (("n_in", 1), ("n_out", 1), ("groups", 1)):
            _pos_int(self.name, fld, getattr(self, fld), lo)
        for fld, length, lo in (("in_chw", 3, 1), ("out_hw", 2, 1), ("kernel", 2, 1),
                                ("stride", 2, 1), ("padding", 2, 0), ("dilation", 2, 1)):
            value = tuple(getattr(self, fld))
            if len(value) != length:
                raise ConfigError(f"LayerSpec {self.name!r}: {fld} = {value!r} is invalid; "
                                 f"allowed: {length} integers")
            for v in value:
                _pos_int(self.name, fld, v, lo)
            object.__setattr__(self, fld, value)
        if self.n_out % self.groups:
            raise ConfigError(f"LayerSpec {self.name!r}: n_out = {self.n_out} is not a "
                             f"multiple of groups = {self.groups}")
        if self.kind == "linear" and (self.out_hw[0] != 1 or self.in_chw[1] != 1):
            raise ConfigError(f"LayerSpec {self.name!r}: a linear layer has one output row and"
                             f" one input row; got out_hw = {self.out_hw}, in_chw = "
                             f"{self.in_chw}")
        if self.kind == "recurrent" and (self.out_hw[1] != 1 or self.in_chw[2] != 1
                                         or self.in_chw[1] != self.out_hw[0]
                                         or self.kernel != (1, 1) or self.groups != 1):
            raise ConfigError(f"LayerSpec {self.name!r}: a recurrent layer has one vector per "
                              f"step (in_chw = (n_in, steps, 1), out_hw = (steps, 1), kernel "
                              f"(1, 1), groups 1); got in_chw = {self.in_chw}, out_hw = "
                              f"{self.out_hw}, kernel = {self.kernel}, groups = {self.groups}")
        if not isinstance(self.signed_inputs, bool):
            raise ConfigError(f"LayerSpec {self.name!r}: signed_inputs = "
                             f"{self.signed_inputs!r} is invalid; allowed: true or false")

    @property
    def positions(self) -> int:
        """Output positions (input vectors) per inference: H_out * W_out, or vectors."""
        return self.out_hw[0] * self.out_hw[1]

    @property
    def passes(self) -> int:
        """Input passes per MVM: 2 for signed inputs, else 1."""
        return 2 if self.signed_inputs else 1

    @property
    def in_elements(self) -> int:
        c, h, w = self.in_chw
        return c * h * w

    def row_tiles(self, xbar: XbarConfig) -> int:
        """Tiles that split the weight matrix's rows (partial sums added digitally)."""
        return ceil_div(self.n_in, xbar.array.rows)

    def col_tiles(self, xbar: XbarConfig) -> int:
        """Tiles across the outputs of one group."""
        return ceil_div(self.n_out // self.groups, xbar.array.weight_cols)

    def input_rows_needed(self, out_row: int) -> int:
        """Input rows (from the top) that output row ``out_row`` needs: its line-buffer
        window ends at row out_row * sh - top + dh * (kh - 1)."""
        if self.kind == "linear":
            return 1
        last = out_row * self.stride[0] - self.padding[0] + self.dilation[0] * (self.kernel[0] - 1)
        return max(0, min(self.in_chw[1], last + 1))

    def input_rows_released(self, out_row: int) -> int:
        """Input rows no output row after ``out_row`` reads (they may leave the buffer)."""
        if self.kind == "linear" or out_row + 1 >= self.out_hw[0]:
            return self.in_chw[1]
        first_next = (out_row + 1) * self.stride[0] - self.padding[0]
        return max(0, min(self.in_chw[1], first_next))

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        for k, v in doc.items():
            if isinstance(v, tuple):
                doc[k] = list(v)
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> "LayerSpec":
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in doc.items()}
        return cls(**values)


def check_chain(layers: list[LayerSpec] | tuple[LayerSpec, ...]) -> None:
    """Refuse an empty network or duplicate layer names (results are keyed by name)."""
    if not layers:
        raise ConfigError("the network has no Linear or Conv2d layer to map")
    seen: set[str] = set()
    for spec in layers:
        if not isinstance(spec, LayerSpec):
            raise ConfigError(f"expected LayerSpec items, got {type(spec).__name__}")
        if spec.name in seen:
            raise ConfigError(f"duplicate layer name {spec.name!r}")
        seen.add(spec.name)
