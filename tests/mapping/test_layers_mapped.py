"""Grouped/depthwise, 1-D and transposed convolutions, RNN/GRU/LSTM, attention and
Transformer encoder layers, embeddings: mapped onto crossbars (issue 23).

Each network is checked four ways: the mapped form computes what PyTorch computes; a chip of
a near-ideal device gives the software logits; every weight is on cells (the programmed
matrices hold the layer's own weights, counted against the PyTorch parameters, and the timing
model counts the same cells); a faulty device moves the outputs; every layer takes time.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xbar.config import ADCConfig, ArrayConfig, DACConfig, HardwareConfig, XbarConfig
from xbar.devices import Device, preset
from xbar.errors import ModelError
from xbar.mapping.chip import Chip
from xbar.mapping.convert import fold_batchnorm
from xbar.mapping.geometry import layer_specs
from xbar.timing import LayerSpec, network_cycles_layer_schedule, plan_layer, simulate
from xbar.timing.area import chip_area
from xbar.timing.energy import one_shot_energy

HI_RES = XbarConfig(array=ArrayConfig(rows=32, cols=16), dac=DACConfig(input_bits=14),
                    adc=ADCConfig(bits=14))
# Ideal apart from levels: 65,536 of them, so weights are near float.
FINE = Device(name="fine", g_min_us=1.0, g_max_us=100.0, n_levels=65536)
FAULTY = Device(name="faulty", g_min_us=1.0, g_max_us=100.0, n_levels=16, sa0_rate=0.2,
                sa1_rate=0.05)


class LastStep(nn.Module):
    """A recurrent layer on (N, 1, T, F) images or (N, T, F) sequences; logits of the last
    step plus the mean over steps (so that both directions' every step counts)."""

    def __init__(self, rnn: nn.RNNBase, n_out: int = 3) -> None:
        super().__init__()
        self.rnn = rnn
        width = rnn.hidden_size * (2 if rnn.bidirectional else 1)
        self.fc = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1, 2) if x.dim() == 4 else x
        if not self.rnn.batch_first:
            x = x.transpose(0, 1)
        out, _ = self.rnn(x)
        out = out if self.rnn.batch_first else out.transpose(0, 1)
        return self.fc(out[:, -1] + out.mean(1))


class TinyTransformer(nn.Module):
    """Patches as tokens: a Linear embedding, a learned position table (an nn.Embedding
    looked up digitally), two encoder layers, mean pooling, a Linear head."""

    def __init__(self, n_in: int = 4, d: int = 8, tokens: int = 6, norm_first: bool = False
                 ) -> None:
        super().__init__()
        self.embed = nn.Linear(n_in, d)
        self.pos = nn.Embedding(tokens, d)
        layer = nn.TransformerEncoderLayer(d, 2, 16, dropout=0.1, batch_first=True,
                                           norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(d, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1, 2) if x.dim() == 4 else x
        ids = torch.arange(x.shape[1], device=x.device)
        return self.head(self.encoder(self.embed(x) + self.pos(ids)).mean(1))


class CrossAttention(nn.Module):
    """MultiheadAttention alone, sequence-first, key/value of their own sizes, a mask."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 4, kdim=5, vdim=6)
        self.kv = nn.Linear(4, 11)
        self.q = nn.Linear(4, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1, 2) if x.dim() == 4 else x
        s = x.transpose(0, 1)                     # (T, N, F)
        kv = self.kv(s)
        mask = torch.ones(s.shape[0], s.shape[0], dtype=torch.bool).triu(1)
        out, _ = self.attn(self.q(s), kv[..., :5], kv[..., 5:], attn_mask=mask)
        return self.head(out[-1])


def _inputs(shape: tuple[int, ...], n: int = 12, seed: int = 1) -> torch.Tensor:
    return torch.randn((n, *shape), generator=torch.Generator().manual_seed(seed))


def _bn(channels: int, two_d: bool = True) -> nn.Module:
    bn = nn.BatchNorm2d(channels) if two_d else nn.BatchNorm1d(channels)
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 2.0)
    bn.weight.data.uniform_(0.5, 1.5)
    return bn


def _networks() -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
    torch.manual_seed(0)
    return {
        "depthwise": (nn.Sequential(
            nn.Conv2d(4, 8, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=8), _bn(8),
            nn.ReLU(), nn.Conv2d(8, 6, 3, stride=2, groups=2), nn.Flatten(),
            nn.Linear(6 * 3 * 3, 3)), (4, 7, 7)),
        "conv1d": (nn.Sequential(
            nn.Conv1d(4, 6, 3, padding=1), _bn(6, False), nn.ReLU(),
            nn.Conv1d(6, 6, 5, padding="same", groups=3, padding_mode="circular"),
            nn.ReLU(), nn.Conv1d(6, 4, 3, stride=2, dilation=2), nn.Flatten(),
            nn.Linear(4 * 4, 3)), (4, 12)),
        "transposed": (nn.Sequential(
            nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(6, 4, (2, 3), groups=2, dilation=(1, 2)), nn.Flatten(),
            nn.Linear(4 * 11 * 14, 3)), (4, 5, 5)),
        "rnn": (LastStep(nn.RNN(4, 6, num_layers=2)), (1, 7, 4)),
        "gru": (LastStep(nn.GRU(4, 6, batch_first=True, bidirectional=True)), (1, 7, 4)),
        "lstm": (LastStep(nn.LSTM(4, 5, num_layers=2, batch_first=True, bidirectional=True,
                                  dropout=0.2)), (1, 7, 4)),
        "attention": (CrossAttention(), (1, 6, 4)),
        "transformer": (TinyTransformer(), (1, 6, 4)),
        "transformer-norm-first": (TinyTransformer(norm_first=True), (1, 6, 4)),
    }


def _input_driven(networks: dict[str, tuple[nn.Module, tuple[int, ...]]]
                  ) -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
    """Centre the logits (the last Linear's bias minus their mean over 64 random inputs),
    so that the class each input gets depends on the input: with random weights one class
    would often win for every input."""
    for model, shape in networks.values():
        last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        model.eval()
        with torch.no_grad():
            last.bias -= model(_inputs(shape, 64, seed=99)).mean(0)
    return networks


NETWORKS = _input_driven(_networks())


def _weights(model: nn.Module) -> int:
    """Weights of the PyTorch layers that go onto crossbars, counted from their parameters
    (a grouped conv's block-diagonal zeros are cells too: groups x its weights)."""
    total = 0
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)):
            total += m.weight.numel() * m.groups
        elif isinstance(m, nn.Linear) and not isinstance(
                m, nn.modules.linear.NonDynamicallyQuantizableLinear):
            total += m.weight.numel()
        elif isinstance(m, nn.RNNBase):
            total += sum(p.numel() for n, p in m.named_parameters() if n.startswith("weight"))
        elif isinstance(m, nn.MultiheadAttention):
            total += sum(p.numel() for n, p in m.named_parameters() if "weight" in n)
    return total


@pytest.mark.parametrize("name", list(NETWORKS))
def test_mapped_form_computes_what_pytorch_computes(name):
    model, shape = NETWORKS[name]
    x = _inputs(shape)
    mapped, _ = fold_batchnorm(model)
    assert not any(isinstance(m, (nn.RNNBase, nn.MultiheadAttention, nn.Conv1d,
                                  nn.ConvTranspose2d)) for m in mapped.modules())
    assert all(m.groups == 1 for m in mapped.modules() if isinstance(m, nn.Conv2d))
    with torch.no_grad():
        torch.testing.assert_close(mapped(x), model.eval()(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(NETWORKS))
def test_ideal_chip_equals_software_and_every_weight_is_on_cells(name):
    model, shape = NETWORKS[name]
    x = _inputs(shape, n=40)
    chip = Chip.program(model, FINE, HI_RES, seed=0, input_shape=shape)
    chip.calibrate(x)
    with torch.no_grad():
        ref = model.eval()(x).numpy()
    got = chip.predict(x)
    assert np.abs(got - ref).max() < 2e-3 * np.abs(ref).max()
    assert (got.argmax(1) != ref.argmax(1)).sum() <= 1  # within one input of 40
    # every weight on cells: the matrices hold as many weights as the PyTorch layers ...
    assert sum(layer.matrix.n_in * layer.matrix.n_out for layer in chip.layers) == \
        _weights(model)
    # ... and they are those weights: the programmed magnitudes add up to the layers'
    mapped, _ = fold_batchnorm(model)
    software = sum(float((m.weight * getattr(m, "mask", 1.0)).detach().abs().sum())
                   for m in mapped.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
    programmed = sum(float(np.abs(layer.matrix.effective_weights()).sum())
                     for layer in chip.layers)
    assert programmed == pytest.approx(software, rel=1e-3)
    # ... and the timing model counts the same cells
    specs = layer_specs(model, shape)
    assert sorted(s.name for s in specs) == sorted(layer.layer_name for layer in chip.layers)
    hw = HardwareConfig(array=HI_RES.array, dac=HI_RES.dac, adc=HI_RES.adc)
    assert one_shot_energy(specs, hw).pulses == chip.n_cells


@pytest.mark.parametrize("name", list(NETWORKS))
def test_a_faulty_device_moves_the_outputs(name):
    model, shape = NETWORKS[name]
    x = _inputs(shape, n=30)
    with torch.no_grad():
        ref = model.eval()(x).numpy()
    chip = Chip.program(model, FAULTY, XbarConfig(), seed=0)
    chip.calibrate(x)
    got = chip.predict(x)
    # 20 % of cells stuck at g_min, 5 % at g_max: the logits move by a large fraction
    assert np.abs(got - ref).mean() > 0.05 * np.abs(ref).mean()
    agree = chip.evaluate(x.numpy(), ref.argmax(1))
    ideal = Chip.program(model, FINE, HI_RES, seed=0)
    ideal.calibrate(x)
    exact = ideal.evaluate(x.numpy(), ref.argmax(1))
    assert exact >= 29 / 30 and agree < exact - 1 / 30  # the ideal chip: within one input


@pytest.mark.parametrize("name", list(NETWORKS))
def test_every_layer_takes_time_energy_and_area(name):
    model, shape = NETWORKS[name]
    specs = layer_specs(model, shape)
    result = simulate(specs)
    assert all(lt.cycles > 0 and lt.tiles > 0 for lt in result.layers)
    assert result.total_cycles == sum(network_cycles_layer_schedule(specs))
    area = chip_area(specs)
    assert all(sum(c.values()) > 0 for c in area.per_layer.values())


def test_recurrent_steps_are_sequential_and_counted():
    model, shape = NETWORKS["lstm"]
    specs = {s.name: s for s in layer_specs(model, shape)}
    hh = specs["rnn.l0.hh"]
    # 7 time steps, one vector each, 4 gates x 5 hidden outputs from 5 hidden inputs
    assert (hh.kind, hh.out_hw, hh.in_chw, hh.n_in, hh.n_out) == \
        ("recurrent", (7, 1), (5, 7, 1), 5, 20)
    ih = specs["rnn.l1_reverse.ih"]
    assert (ih.kind, ih.out_hw, ih.n_in, ih.n_out) == ("linear", (1, 7), 10, 20)
    # the engine: step k waits for step k - 1's activation, so the steps add up
    hw = HardwareConfig()
    plan = plan_layer(hh, hw.xbar, hw.timing)
    alone = simulate([hh], hw)
    assert alone.total_cycles == plan.input_cycles + 7 * sum(plan.stage_cycles)
    as_rows = LayerSpec(name="rows", kind="conv", n_in=5, n_out=20, in_chw=(5, 7, 1),
                        out_hw=(7, 1))   # the same rows, free to overlap
    assert simulate([as_rows], hw).total_cycles < alone.total_cycles
    pipe = simulate([hh], hw, schedule="pipelined")
    # pipelined, the input arrives row by row, yet the steps still do not overlap
    assert 7 * sum(plan.stage_cycles) < pipe.total_cycles <= alone.total_cycles


def test_attention_runs_its_projections_through_the_crossbars():
    model, shape = NETWORKS["transformer"]
    x = _inputs(shape, n=5)
    chip = Chip.program(model, FINE, HI_RES, seed=0)
    chip.calibrate(x)
    names = [layer.layer_name for layer in chip.layers]
    for i in range(2):
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            assert f"encoder.layers.{i}.self_attn.{proj}" in names
    calls: list[str] = []
    for layer in chip.layers:
        layer.register_forward_hook(lambda m, a, o: calls.append(m.layer_name))
    chip.predict(x)  # eval mode, no gradient: PyTorch's fast path would skip them
    assert sorted(set(calls)) == sorted(names)
    # the position table is a digital look-up: no cells
    assert "pos" not in names
    assert isinstance(chip.module.pos, nn.Embedding)


def test_embedding_is_a_digital_lookup():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Embedding(10, 6), nn.Flatten(), nn.Linear(18, 3)).eval()
    ids = torch.randint(0, 10, (8, 3))
    chip = Chip.program(model, FINE, HI_RES, seed=0)
    chip.calibrate(ids.float())
    assert [layer.layer_name for layer in chip.layers] == ["2"]
    np.testing.assert_allclose(chip.predict(ids.float()), model(ids).detach().numpy(),
                               atol=2e-3)
    with pytest.raises(ModelError, match="token ids"):
        chip.predict(ids.float() + 0.5)


def test_grouped_conv_is_block_diagonal_with_zero_cells():
    torch.manual_seed(4)
    conv = nn.Conv2d(6, 6, 3, groups=3)
    chip = Chip.program(nn.Sequential(conv), FINE, HI_RES, seed=0)
    w = chip.layers[0].matrix.effective_weights().reshape(6, 6, 3, 3)
    for q in range(3):
        block = w[2 * q:2 * q + 2, 2 * q:2 * q + 2]
        np.testing.assert_allclose(block, conv.weight.detach()[2 * q:2 * q + 2], atol=1e-3)
        w[2 * q:2 * q + 2, 2 * q:2 * q + 2] = 0
    assert np.abs(w).max() < 1e-3        # off-diagonal cells hold the weight 0
    assert chip.layers[0].matrix.n_in == 6 * 9


def test_transposed_conv_with_output_size_and_unbatched_inputs():
    torch.manual_seed(5)
    ct = nn.ConvTranspose2d(3, 2, 3, stride=2)
    mapped, _ = fold_batchnorm(nn.Sequential(ct))
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(mapped[0](x, output_size=[10, 10]),
                               ct(x, output_size=[10, 10]))
    torch.testing.assert_close(mapped(x[0]), ct(x[0]))


def test_recurrent_state_and_unbatched_inputs_match_pytorch():
    torch.manual_seed(6)
    for rnn in (nn.LSTM(3, 4, 2), nn.GRU(3, 4, bidirectional=True),
                nn.RNN(3, 4, nonlinearity="relu", bias=False)):
        mapped, _ = fold_batchnorm(rnn)
        x = torch.randn(5, 2, 3)
        h0 = torch.randn(rnn.num_layers * (2 if rnn.bidirectional else 1), 2, 4)
        hx = (h0, torch.randn_like(h0)) if isinstance(rnn, nn.LSTM) else h0
        for a, b in zip(mapped(x, hx), rnn(x, hx)):
            for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple)
                            else (b,)):
                torch.testing.assert_close(u, v)
        torch.testing.assert_close(mapped(x[:, 0])[0], rnn(x[:, 0])[0])
    with pytest.raises(ModelError, match="packed"):
        seq = nn.utils.rnn.pack_padded_sequence(torch.randn(5, 2, 3), [5, 3])
        fold_batchnorm(nn.LSTM(3, 4))[0](seq)


def test_chip_with_recurrent_and_grouped_layers_saves_and_loads(tmp_path):
    for name in ("lstm", "depthwise", "transformer"):
        model, shape = NETWORKS[name]
        x = _inputs(shape, n=6)
        chip = Chip.program(model, preset("wan2022"), XbarConfig(), seed=2, input_shape=shape)
        chip.calibrate(x)
        chip.save(tmp_path / f"{name}.h5")
        back = Chip.load(tmp_path / f"{name}.h5", model)
        chip.reset_reads()
        back.reset_reads()
        np.testing.assert_array_equal(chip.predict(x), back.predict(x))


def test_straight_through_gradient_reaches_every_mapped_layer():
    model, shape = NETWORKS["lstm"]
    x = _inputs(shape, n=4)
    chip = Chip.program(model, FINE, HI_RES, seed=0)
    chip.calibrate(x)
    for layer in chip.layers:
        layer.w_eff.requires_grad_(True)
    F.cross_entropy(chip.module(x), torch.zeros(4, dtype=torch.long)).backward()
    assert all(layer.w_eff.grad is not None and layer.w_eff.grad.abs().sum() > 0
               for layer in chip.layers)


def test_lipschitz_regulariser_sees_the_matrices_the_chip_holds():
    """CorrectNet's regulariser acts on the PyTorch layers (gradients reach their weights)
    but must form the matrices the mapping programs: block-diagonal groups, recurrent
    input/recurrent matrices, attention projections, transposed-conv columns."""
    from xbar.mapping.convert import mapped_layers
    from xbar.mapping.recovery.techniques.lipschitz import crossbar_matrices

    torch.manual_seed(7)
    model = nn.ModuleList([nn.Conv2d(4, 6, 3, groups=2), nn.Conv1d(3, 4, 3),
                           nn.ConvTranspose2d(4, 6, 3, groups=2),
                           nn.LSTM(3, 4, 2, bidirectional=True), nn.MultiheadAttention(4, 2),
                           nn.Linear(3, 2)])
    mapped, _ = fold_batchnorm(model)
    want = {n: (m.weight * getattr(m, "mask", 1.0)).reshape(m.weight.shape[0], -1)
            for n, m in mapped_layers(mapped)}
    got = dict(crossbar_matrices(model))
    assert sorted(got) == sorted(want)
    for name in want:
        torch.testing.assert_close(got[name], want[name])
    got["3.l0_reverse.hh"].sum().backward()
    assert model[3].weight_hh_l0_reverse.grad.abs().sum() > 0


def test_transformer_decoder_layer_runs_its_attention_through_the_mapped_form():
    torch.manual_seed(8)
    dec = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0).eval()
    mapped, _ = fold_batchnorm(dec)
    tgt, memory = torch.randn(5, 2, 8), torch.randn(4, 2, 8)
    mask = nn.Transformer.generate_square_subsequent_mask(5)
    with torch.no_grad():
        torch.testing.assert_close(mapped(tgt, memory, tgt_mask=mask),
                                   dec(tgt, memory, tgt_mask=mask))
    names = [n for n, m in mapped.named_modules() if isinstance(m, nn.Linear)]
    assert "multihead_attn.k_proj" in names and "self_attn.q_proj" in names


def test_kd_weight_clip_measures_a_grouped_column_over_its_own_block():
    """KD clips each column to K x its RMS weight; over the whole block-diagonal column the
    zeros would pull the RMS down by sqrt(groups) and the clip would cut the real weights
    (a depthwise network's KD student fell to chance before this was fixed)."""
    from torch.nn.utils import parametrize

    from xbar.mapping.recovery.techniques.kd import _clip_columns

    torch.manual_seed(9)
    (layer,) = [m for m in fold_batchnorm(nn.Conv2d(8, 8, 3, groups=8))[0].modules()
                if isinstance(m, nn.Conv2d)]
    parametrize.register_parametrization(layer, "weight", nn.Identity())
    before = layer.parametrizations.weight.original.detach().clone()
    _clip_columns([layer], 3.0)   # 9 weights per column: none exceeds 3 x their RMS
    torch.testing.assert_close(layer.parametrizations.weight.original, before)
    _clip_columns([layer], 1.0)   # at 1 x RMS the largest weight of each column is cut
    after = layer.parametrizations.weight.original
    assert (after.abs().amax((1, 2, 3)) < before.abs().amax((1, 2, 3))).all()


@pytest.mark.parametrize("name", ["lstm", "transformer", "transposed"])
def test_the_torch_backend_runs_the_new_layers(name):
    """The torch code path (the one CUDA runs) on the CPU: the same near-software logits."""
    model, shape = NETWORKS[name]
    x = _inputs(shape, n=20)
    chip = Chip.program(model, FINE, HI_RES, seed=0).use_backend("torch-cpu")
    chip.calibrate(x)
    with torch.no_grad():
        ref = model(x).numpy()
    assert np.abs(chip.predict(x) - ref).max() < 2e-3 * np.abs(ref).max()
