"""A programmed chip: a network mapped onto crossbars, with its seed, saved and loaded whole.

``Chip.program(model, device, config, seed)`` folds BatchNorm, programs every Linear/Conv2d
onto arrays (conductances drawn once, faults included); ``chip.calibrate(x)`` sets each
layer's DAC input range and each array's ADC range from a few batches of training inputs;
``chip.predict(x)`` runs it with fresh read noise on every read. ``chip.use_backend(b)`` moves
it to another backend (:data:`xbar.backends.BACKENDS`): the MVMs run there and the digital part
(biases, pooling, SRAM words) moves to the same torch device; programming stays on the host
(the cells are NumPy arrays, drawn from NumPy generators), so a chip's cells never depend on
its backend.

Random streams: the seed's ``SeedSequence`` spawns one stream per mapped layer for
programming and a separate tree for reads, reset at every :meth:`Chip.evaluate`, so the same
seed gives the same chip and the same accuracy.

HDF5 layout (``format = "xbar-sim chip"``, version 4, see ``chip_file.FORMAT_VERSION``)::

    /                 attrs: format, format_version, seed, scale, model (zoo name or file),
                      model_input_shape, written_by, created_utc
    /device           attrs: every Device field (as in device files)
    /hardware         attrs: array.*, dac.*, adc.* settings
    /digital/<param>  every parameter and buffer of the digital part (folded model, minus
                      the analog layers' weights)
    /layers/<i>       attrs: name, kind (linear|conv2d), n_in, n_out, x_max, signed, conv
                      geometry; datasets: g_us, target_levels, stuck (0/1 SA0/2 SA1),
                      g_scale, pos_cols, neg_cols, tile_of_col, adc_range_ua, bias;
                      after adaptation also col_gain, and the SRAM words as sram_index
                      (flat positions in the out x in weight matrix), sram_code (integer
                      words) with attrs sram_step (weight per code) and sram_word_bits;
                      after fault-aware mapping also row_perm (int64 (n_in,): the physical
                      row of each input row; the arrays above stay in input order; absent:
                      the identity)
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np
import torch
from torch import nn

from xbar.devices import Device
from xbar.files import check_overwrite, write_atomically
from xbar.mapping.analog_layers import AnalogConv2d, AnalogLayer
from xbar.mapping.cells import chip_cells
from xbar.mapping.chip_file import (ANALOG_STATE, FORMAT, FORMAT_VERSION, MATRIX_ARRAYS,
                                    check_layer_groups, load_digital, open_chip_file,
                                    read_header, read_row_perm, restore_layer)
from xbar.mapping.convert import analog_layers, fold_batchnorm, mapped_layers, program_layers
from xbar.config import XbarConfig
from xbar.layout import check_device_mapping
from xbar.errors import FileFormatError, MissingFileError, ModelError

ADC_CALIBRATION_VECTORS = 4096  # input vectors per layer used to set ADC ranges


class Chip:
    """A network as programmed onto crossbars."""

    def __init__(self, module: nn.Module, device: Device, config: XbarConfig, seed: int,
                 scale: str = "column", model_source: str = "",
                 input_shape: tuple[int, ...] = ()) -> None:
        self.module = module
        self.device = device
        self.config = config
        self.seed = seed
        self.scale = scale
        self.model_source = model_source
        self.input_shape = tuple(input_shape)
        # Fault-aware mapping (xbar.mapping.recovery.techniques.fault_aware): per layer name,
        # the physical row of each input row; the layer's arrays stay in input order. Absent:
        # the identity.
        self.row_perms: dict[str, np.ndarray] = {}
        # The digital state as programmed: what a chip file can hold and Chip.load rebuild.
        self._programmed_keys = frozenset(k for k in module.state_dict()
                                          if not k.endswith(ANALOG_STATE))

    # ------------------------------------------------------------------ building
    @classmethod
    def program(cls, model: nn.Module, device: Device, config: XbarConfig, seed: int = 0,
                scale: str = "column", model_source: str = "",
                input_shape: tuple[int, ...] = ()) -> "Chip":
        """Fold BatchNorm and program every mappable layer of ``model`` once.

        Raises:
            ConfigError: ``config.array.weight_mapping`` contradicts the mapping the device's
                source fixes (``device.weight_mapping``; :func:`xbar.layout.check_device_mapping`
                says how to resolve it). Other invalid settings and unmappable models as the
                mapping raises them.
        """
        check_device_mapping(device, config, "the hardware configuration")
        folded, _ = fold_batchnorm(model)
        n = len(mapped_layers(folded))
        if n == 0:
            raise FileFormatError("the model has no Linear or Conv2d layer to map onto crossbars")
        rngs = np.random.default_rng(np.random.SeedSequence([seed, 0])).spawn(n)
        module = program_layers(folded, device, config, rngs, scale)
        return cls(module, device, config, seed, scale, model_source, input_shape)

    @property
    def layers(self) -> list[AnalogLayer]:
        return analog_layers(self.module)

    def use_backend(self, backend: str) -> "Chip":
        """Run this chip on ``backend`` from now on; returns the chip.

        ``"cpu"``: the Numba kernel, tensors on the CPU; ``"cuda"``: :mod:`xbar.kernel_torch`
        on the GPU, with the digital part (biases, SRAM words, pooling) moved there too;
        ``"torch-cpu"``: that code path on the CPU (checks); ``"auto"``: CUDA when torch sees
        a GPU, else ``"cpu"``. Inputs may live anywhere: :meth:`predict` moves each batch.

        Raises:
            ConfigError: ``backend`` is not one of :data:`xbar.backends.BACKENDS`.
            ResourceError: ``"cuda"`` where torch sees no GPU.
        """
        from xbar.kernel_torch import resolve_backend, torch_device
        run = resolve_backend(backend)
        dev = torch_device(run)
        self.module.to(dev)
        for layer in self.layers:
            layer.matrix.backend = run
            if layer.sram_mask is not None:  # a plain tensor attribute: .to() skips it
                layer.sram_mask = layer.sram_mask.to(dev)
        return self

    @property
    def backend(self) -> str:
        """The resolved backend the chip's MVMs run on (see :meth:`use_backend`)."""
        layers = self.layers
        return layers[0].matrix.resolved_backend() if layers else "cpu"

    @property
    def torch_device(self) -> torch.device:
        """Where the chip's tensors live (inputs are moved there)."""
        return self.layers[0].w_eff.device

    @property
    def n_tiles(self) -> int:
        return sum(layer.matrix.n_tiles for layer in self.layers)

    @property
    def n_cells(self) -> int:
        return sum(layer.matrix.n_cells for layer in self.layers)

    def age_to(self, t_s: float, reads_per_s: float = 0.0) -> "Chip":
        """Show every layer's cells as they are ``t_s`` seconds after programming (the chip's
        clock; :mod:`xbar.devices.relaxation`): each cell relaxed from its last write, stuck
        cells and SRAM words unchanged, DAC and ADC ranges as calibrated. ``reads_per_s``:
        reads of every cell per second of inference; with it the device's read disturb runs
        on the same clock (each cell read ``reads_per_s x`` its age since its last write,
        :meth:`xbar.analog.AnalogMatrix.age_to`). Layer ``k``'s relaxation draws come from
        ``SeedSequence([seed, 24, k])`` (:func:`xbar.devices.relaxation.relaxation_key`). A
        device without relaxation and without read disturb (or with no reads) leaves the chip
        bit for bit as it is. Returns the chip."""
        from xbar.devices.relaxation import relaxation_key
        if not self.device.ages(reads_per_s):
            return self
        for k, layer in enumerate(self.layers):
            m = layer.matrix
            m.age_to(t_s, relaxation_key(self.seed, k), reads_per_s)
            layer.refresh_weights()
        return self

    @property
    def age_s(self) -> float:
        """The chip's clock: seconds since programming its cells show (0 before aging)."""
        clocks = [layer.matrix.clock for layer in self.layers if layer.matrix.clock]
        return clocks[0].now_s if clocks else 0.0

    def reset_reads(self, stream: int = 0) -> None:
        """Give every layer a fresh read-noise generator derived from the seed and stream."""
        seq = np.random.SeedSequence([self.seed, 1, stream])
        for layer, rng in zip(self.layers, np.random.default_rng(seq).spawn(len(self.layers))):
            layer.read_rng = rng

    def capture_inputs(self, x: torch.Tensor, exact: bool) -> dict[str, torch.Tensor]:
        """Run ``x`` and return each analog layer's input, by layer name (exact digital MVMs
        of the programmed weights if ``exact``, else the crossbars)."""
        seen: dict[str, list[torch.Tensor]] = {}
        hooks = []
        for layer in self.layers:
            def hook(mod: AnalogLayer, args: tuple, name: str = layer.layer_name) -> None:
                seen.setdefault(name, []).append(args[0].detach())
            hooks.append(layer.register_forward_pre_hook(hook))
        saved = [(layer.analog, layer.x_max) for layer in self.layers]
        try:
            for layer in self.layers:
                layer.analog = not exact
                if layer.x_max is None:
                    layer.x_max = 1.0
            with torch.no_grad():
                self.module(x.to(self.torch_device))
        finally:
            for h in hooks:
                h.remove()
            for layer, (analog, x_max) in zip(self.layers, saved):
                layer.analog, layer.x_max = analog, x_max
        return {k: torch.cat(v) for k, v in seen.items()}

    def calibrate(self, x: np.ndarray | torch.Tensor) -> None:
        """Set DAC input ranges and ADC ranges from inputs ``x`` (a few training batches).

        Each layer's input range is the largest |input| it sees when the network runs with
        exact (digital) MVMs of its programmed weights; it is signed when any input is
        negative. ADC ranges are then the largest noise-free bit-line currents per array on
        up to ADC_CALIBRATION_VECTORS of those input vectors.
        """
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        inputs = self.capture_inputs(x, exact=True)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 2]))
        for layer in self.layers:
            cols = layer.input_columns(inputs[layer.layer_name]).cpu().numpy()
            layer.set_input_range(float(np.abs(cols).max()) if cols.size else 1.0,
                                  bool((cols < 0).any()))
            if len(cols) > ADC_CALIBRATION_VECTORS:
                cols = cols[np.sort(rng.choice(len(cols), ADC_CALIBRATION_VECTORS, False))]
            if self.config.adc.range_mode == "calibrated":
                layer.matrix.calibrate_adc(cols, layer.x_max, layer.signed)

    # ------------------------------------------------------------------ running
    def predict(self, x: np.ndarray | torch.Tensor, batch_size: int = 500,
                progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Logits for ``x`` (N, C, H, W) through the chip, in batches."""
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        if self.input_shape and tuple(x.shape[1:]) != self.input_shape:
            raise FileFormatError(f"inputs have shape {tuple(x.shape[1:])} per sample but the chip "
                             f"was mapped for {self.input_shape}")
        out = []
        dev = self.torch_device
        with torch.no_grad():
            for lo in range(0, len(x), batch_size):
                out.append(self.module(x[lo:lo + batch_size].to(dev)).cpu().numpy())
                if progress:
                    progress(min(lo + batch_size, len(x)), len(x))
        return np.concatenate(out) if out else np.zeros((0,))

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = 500,
                 progress: Callable[[int, int], None] | None = None) -> float:
        """Accuracy in [0, 1]; read noise restarts from the seed, so it is reproducible."""
        self.reset_reads()
        logits = self.predict(x, batch_size, progress)
        if not np.isfinite(logits).all():  # never score NaN/inf: argmax would pick one
            bad = int((~np.isfinite(logits).all(axis=1)).sum())
            raise ModelError(f"the chip returns NaN or infinite outputs for {bad} of "
                             f"{len(logits)} images; refusing to score it")
        return float(np.mean(logits.argmax(axis=1) == np.asarray(y)))

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> None:
        """Write the chip to HDF5 atomically (see the module docstring for the layout).

        Raises:
            OutputError: ``path`` exists and is not a chip file (a sweep's or a comparison's
                results, say): it is never overwritten.
            ModelError: modules were added to the chip after programming (work 4's
                compensation layers): :meth:`load` could not rebuild them.
        """
        check_overwrite(path, FORMAT, "chip file")
        digital = {k: v.detach().cpu().numpy() for k, v in self.module.state_dict().items()
                   if not k.endswith(ANALOG_STATE)}
        added = sorted(set(digital) - self._programmed_keys)
        if added:  # Chip.load could not rebuild them: refuse rather than write a dead file
            raise ModelError(f"cannot save this chip to {str(path)!r}: modules were added to it "
                             f"after programming (their parameters {added[:6]}"
                             f"{' ...' if len(added) > 6 else ''}, e.g. work 4's compensation "
                             "layers); a chip file holds the programmed arrays and the "
                             "network's own digital parameters, SRAM words and column gains "
                             "only")

        def write(tmp: str) -> None:
            with h5py.File(tmp, "w") as f:
                f.attrs.update(format=FORMAT, format_version=FORMAT_VERSION, seed=self.seed,
                               scale=self.scale, model=self.model_source,
                               model_input_shape=np.asarray(self.input_shape, dtype=np.int64),
                               created_utc=_dt.datetime.now(_dt.timezone.utc).isoformat())
                dev = f.create_group("device")
                for k, v in self.device.to_dict().items():
                    dev.attrs[k] = np.asarray(v, dtype=np.float64) if isinstance(v, list) else v
                hw = f.create_group("hardware")
                for section, values in self.config.to_dict().items():
                    for k, v in values.items():
                        hw.attrs[f"{section}.{k}"] = v
                dg = f.create_group("digital")
                for k, v in digital.items():
                    dg.create_dataset(k, data=v)
                lg = f.create_group("layers")
                for i, layer in enumerate(self.layers):
                    g = lg.create_group(str(i))
                    m = layer.matrix
                    g.attrs.update(name=layer.layer_name, n_in=m.n_in, n_out=m.n_out,
                                   x_max=layer.x_max if layer.x_max is not None else np.nan,
                                   signed=layer.signed,
                                   kind="conv2d" if isinstance(layer, AnalogConv2d) else
                                   "linear")
                    if isinstance(layer, AnalogConv2d):
                        g.attrs.update(in_channels=layer.in_channels,
                                       kernel_size=layer.kernel_size, stride=layer.stride,
                                       padding=layer.padding, dilation=layer.dilation,
                                       padding_mode=layer.padding_mode)
                    for name in MATRIX_ARRAYS:
                        g.create_dataset(name, data=getattr(m, name), compression="gzip",
                                         compression_opts=1)
                    if m.adc_range_ua is not None:
                        g.create_dataset("adc_range_ua", data=m.adc_range_ua)
                    if layer.bias is not None:
                        g.create_dataset("bias", data=layer.bias.detach().cpu().numpy())
                    if layer.col_gain is not None:
                        g.create_dataset("col_gain",
                                         data=layer.col_gain.detach().cpu().numpy())
                    if layer.sram_code is not None:
                        idx = np.flatnonzero(layer.sram_mask.cpu().numpy().reshape(-1))
                        codes = layer.sram_code.detach().cpu().round().reshape(-1)[idx]
                        g.create_dataset("sram_index", data=idx.astype(np.int64))
                        g.create_dataset("sram_code", data=codes.numpy().astype(np.int32))
                        g.attrs.update(sram_step=layer.sram_step,
                                       sram_word_bits=layer.sram_word_bits)
                    if layer.layer_name in self.row_perms:
                        g.create_dataset("row_perm", data=np.asarray(
                            self.row_perms[layer.layer_name], dtype=np.int64))

        write_atomically(path, write)

    @classmethod
    def load(cls, path: str | Path, model: nn.Module) -> "Chip":
        """Read a chip saved by :meth:`save`; ``model`` gives the architecture (weights unused).

        The model must be the one the chip was programmed from (same layer names and
        shapes); its digital parameters are taken from the file. Every field is checked
        (:mod:`xbar.mapping.chip_file`): format and version, shapes and column layout against
        the model, ranges (conductances inside the device's range, level indices, stuck codes
        0/1/2 with stuck cells at g_min/g_max), finiteness.

        Raises:
            MissingFileError: No such file.
            FileFormatError: Anything wrong, naming the file, the layer and what.
        """
        path = Path(path)
        if not path.exists():
            raise MissingFileError(f"chip file {str(path)!r} does not exist")
        with open_chip_file(path) as f:
            h = read_header(f, path)
            chip = cls.program(model, h.device, h.config, h.seed, h.scale, h.model,
                               h.input_shape)
            layers = chip.layers
            check_layer_groups(f, path, layers)
            for i, layer in enumerate(layers):
                restore_layer(f["layers"][str(i)], layer, h.device, f"{path} layer {i}")
                perm = read_row_perm(f["layers"][str(i)], layer, h.config,
                                     f"{path} layer {i}")
                if perm is not None:
                    chip.row_perms[layer.layer_name] = perm
            load_digital(f, path, chip.module)
        if chip.row_perms:  # the cells' own draws follow their rows (xbar.mapping.cells)
            spare = max(int(p.max()) + 1 - lay.matrix.n_in for lay in layers
                        if (p := chip.row_perms.get(lay.layer_name)) is not None)
            cells = chip_cells(h.seed, [(lay.layer_name, lay.matrix.n_in, lay.matrix.n_out)
                                        for lay in layers], h.device, h.config, max(spare, 0))
            for lay, c in zip(layers, cells):
                perm = chip.row_perms.get(lay.layer_name)
                if perm is not None and c.eps is not None:
                    lay.matrix.d2d = c.eps[perm]
        return chip

    def digital_layers(self) -> list[dict[str, Any]]:
        """Layers with weights that stay digital, not on cells (embeddings: table look-ups;
        :func:`xbar.mapping.lowering.digital_layers`)."""
        from xbar.mapping.lowering import digital_layers
        return digital_layers(self.module)

    def describe(self) -> list[dict[str, Any]]:
        """Per-layer mapping summary."""
        out = []
        for layer in self.layers:
            m = layer.matrix
            out.append({"name": layer.layer_name, "kind": type(layer).__name__,
                        "weights": [m.n_out, m.n_in], "tiles": m.n_tiles,
                        "row_tiles": m.n_row_tiles, "col_tiles": m.n_col_tiles,
                        "cells": m.n_cells, "x_max": layer.x_max, "signed": layer.signed})
        return out
