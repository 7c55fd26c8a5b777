"""Work 4's recovery methods (CorrectNet / CorrectNet+) as plug-ins of ``xbar compare``.

======================  ==========================================================================
lipschitz               the Lipschitz-regularised network programmed once (one pulse per cell)
lipschitz+comp          the same, plus error-compensation layers trained on the chip
comp                    the plain teacher programmed once, plus compensation layers
======================  ==========================================================================

The Lipschitz-regularised network: ``Work4Options.network`` when given (e.g. a zoo model
trained from scratch with the regulariser, :func:`xbar.mapping.data.train.train_model`
``regularizer=``), else the teacher fine-tuned with the regulariser
(:func:`lipschitz_fine_tune`: Adam, ``fine_tune_epochs`` epochs, cross-entropy plus the
penalty), kept for the other chips of the same comparison. Its training runs on the host
before programming: reported as ``offline_train_s`` (host seconds), never added to the chip's
time.

Compensation (:mod:`xbar.mapping.recovery.compensation`): placed by the greedy sensitivity
search on each chip, trained on that chip; its costs appear under ``comp_*`` (SRAM words,
digital MACs and their latency and energy per inference, SRAM area over the chip's); its
on-chip training time and energy are the method's adaptation time and energy.
"""

from __future__ import annotations

import copy
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xbar.errors import ConfigError
from xbar.mapping.data.datasets import Dataset
from xbar.mapping.data.train import seeded_deterministic
from xbar.mapping.recovery.compensation import (CompensationConfig, attach_compensation,
                                                compensation_costs, place_compensation,
                                                train_compensation)
from xbar.mapping.recovery.lipschitz import LipschitzConfig, LipschitzRegularizer
from xbar.mapping.recovery.methods import (Method, MethodContext, MethodOutcome, options_of,
                                           register)

__all__ = ["Work4Options", "lipschitz_fine_tune"]


@dataclass(frozen=True)
class Work4Options:
    """Settings of the work-4 methods (``CompareSettings.options[name]``).

    Attributes:
        lipschitz: The regulariser.
        fine_tune_epochs: Epochs of regularised fine-tuning of the teacher (when ``network``
            is None).
        fine_tune_lr: Adam's rate for the fine-tuning.
        compensation: Placement, size and training of the compensation layers.
        network: A Lipschitz-regularised network to program (None: fine-tune the teacher).
        network_train_s: Host seconds it took to train ``network`` (reported as
            ``offline_train_s``).
    """

    lipschitz: LipschitzConfig = LipschitzConfig()
    fine_tune_epochs: int = 5
    fine_tune_lr: float = 1e-3
    compensation: CompensationConfig = CompensationConfig()
    network: Any = None
    network_train_s: float = 0.0

    def __post_init__(self) -> None:
        for name, klass in (("lipschitz", LipschitzConfig),
                            ("compensation", CompensationConfig)):
            if not isinstance(getattr(self, name), klass):
                raise ConfigError(f"Work4Options.{name} = {getattr(self, name)!r} is invalid; "
                                  f"allowed: a {klass.__name__}")
        e = self.fine_tune_epochs
        if isinstance(e, bool) or not isinstance(e, int) or e < 1:
            raise ConfigError(f"Work4Options.fine_tune_epochs = {e!r} is invalid; allowed: an "
                              "integer >= 1")
        if not self.fine_tune_lr > 0:
            raise ConfigError(f"Work4Options.fine_tune_lr = {self.fine_tune_lr!r} is invalid; "
                              "allowed: > 0")
        if self.network is not None and not isinstance(self.network, nn.Module):
            raise ConfigError(f"Work4Options.network is a {type(self.network).__name__}; "
                              "allowed: None or an nn.Module")
        if not self.network_train_s >= 0:
            raise ConfigError(f"Work4Options.network_train_s = {self.network_train_s!r} is "
                              "invalid; allowed: seconds >= 0")


def lipschitz_fine_tune(teacher: nn.Module, dataset: Dataset, config: LipschitzConfig,
                        epochs: int = 5, learning_rate: float = 1e-3, seed: int = 0,
                        batch_size: int = 64) -> nn.Module:
    """A copy of ``teacher`` fine-tuned with cross-entropy plus the Lipschitz penalty
    (deterministic: seeded shuffling, one thread)."""
    model = copy.deepcopy(teacher).train()
    reg = LipschitzRegularizer(config)
    x = torch.from_numpy(dataset.x_train)
    y = torch.from_numpy(dataset.y_train)
    with seeded_deterministic(seed, 1):
        opt = torch.optim.Adam(model.parameters(), lr=learning_rate)
        gen = torch.Generator().manual_seed(seed + 13)
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=gen)
            for lo in range(0, len(x), batch_size):
                idx = order[lo:lo + batch_size]
                loss = F.cross_entropy(model(x[idx]), y[idx]) + reg(model)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return model.eval()


_NETWORKS: dict[str, tuple[nn.Module, float]] = {}  # one fine-tuned network per comparison


def _key(teacher: nn.Module, dataset: Dataset, o: Work4Options, seed: int) -> str:
    h = hashlib.blake2b(digest_size=8)
    for name, t in teacher.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    h.update(f"{dataset.fingerprint}|{o.lipschitz!r}|{o.fine_tune_epochs}|{o.fine_tune_lr}|"
             f"{seed}".encode())
    return h.hexdigest()


def _options(ctx: MethodContext) -> Work4Options:
    return options_of(ctx, Work4Options)


def _network(ctx: MethodContext, o: Work4Options) -> tuple[nn.Module, float]:
    """The Lipschitz-regularised network and the host seconds it took."""
    if o.network is not None:
        return o.network, o.network_train_s
    key = _key(ctx.teacher, ctx.dataset, o, ctx.settings.seed)
    if key not in _NETWORKS:
        start = time.perf_counter()
        model = lipschitz_fine_tune(ctx.teacher, ctx.dataset, o.lipschitz, o.fine_tune_epochs,
                                    o.fine_tune_lr, ctx.settings.seed)
        _NETWORKS.clear()  # keep one: a comparison runs one network over its chips
        _NETWORKS[key] = (model, time.perf_counter() - start)
    return _NETWORKS[key]


def _compensated(ctx: MethodContext, o: Work4Options, model: nn.Module,
                 offline_s: float) -> MethodOutcome:
    chip = ctx.program(model)
    c = o.compensation
    names, _ = place_compensation(chip, model, ctx.dataset, c, ctx.seed)
    costs: dict[str, float] = {"offline_train_s": offline_s, "comp_layers": float(len(names))}
    if not names:  # no layer's oracle fix gains more than min_gain: nothing to compensate
        costs.update(comp_sram_words=0.0, comp_digital_macs=0.0, comp_latency_ns=0.0,
                     comp_inference_pj=0.0, comp_sram_area_fraction=0.0)
        return MethodOutcome(chip, costs=costs)
    attach_compensation(chip, names, c.rank, ctx.seed)
    train_compensation(chip, ctx.teacher, ctx.dataset, c, ctx.seed)
    k = compensation_costs(chip, ctx.specs, ctx.hardware, c)
    costs.update(comp_sram_words=float(k["sram_words"]),
                 comp_digital_macs=float(k["digital_macs"]),
                 comp_latency_ns=float(k["latency_ns"]),
                 comp_inference_pj=float(k["inference_pj"]),
                 comp_sram_area_fraction=float(k["sram_area_fraction"]))
    # words_per_layer stays None: the compensation's inference energy is comp_inference_pj
    # (its words can outnumber a small layer's weights, which the SRAM-word energy refuses)
    return MethodOutcome(chip, adapt_s=k["adapt_s"], adapt_pj=k["adapt_pj"],
                         sram_words=k["sram_words"],
                         sram_area_fraction=float(k["sram_area_fraction"]), costs=costs)


def _run_lipschitz(ctx: MethodContext) -> MethodOutcome:
    o = _options(ctx)
    model, seconds = _network(ctx, o)
    return MethodOutcome(ctx.program(model), costs={"offline_train_s": seconds})


def _run_lipschitz_comp(ctx: MethodContext) -> MethodOutcome:
    o = _options(ctx)
    model, seconds = _network(ctx, o)
    return _compensated(ctx, o, model, seconds)


def _run_comp(ctx: MethodContext) -> MethodOutcome:
    return _compensated(ctx, _options(ctx), ctx.teacher, 0.0)


register(Method("lipschitz", "work4", "the Lipschitz-regularised network programmed once",
                _run_lipschitz, options_type=Work4Options))
register(Method("lipschitz+comp", "work4", "the Lipschitz-regularised network programmed "
                "once, plus compensation layers trained on the chip", _run_lipschitz_comp,
                options_type=Work4Options))
register(Method("comp", "work4", "the teacher programmed once, plus compensation layers "
                "trained on the chip", _run_comp,
                options_type=Work4Options))
