"""The shapes of a PyTorch model's weight layers, for the timing engine.

The model is put in its mapped form (:func:`xbar.mapping.convert.fold_batchnorm`: grouped
convolutions block-diagonal, 1-D and transposed convolutions, recurrent layers and attention
as Linear/Conv2d matrices, :mod:`xbar.mapping.lowering`), then one forward pass with hooks on
every ``nn.Linear`` and ``nn.Conv2d`` records, in execution order, what each layer
multiplies: its weight-matrix size, its input feature map and its output positions. A
recurrent matrix's calls are the time steps of one ``"recurrent"`` layer. No weights are
read. A layer with weights that no crossbar model maps (3-D convolution, bilinear ...) is
refused, never left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from xbar.timing.network import LayerSpec
from xbar.errors import ModelError


def parse_input_shape(text: str | Sequence[int]) -> tuple[int, ...]:
    """``"C,H,W"`` (or 1-3 comma-separated positive integers) as a tuple.

    Raises:
        ValueError: Not 1 to 3 positive integers.
    """
    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
    try:
        shape = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        shape = ()
    if not 1 <= len(shape) <= 3 or any(s < 1 for s in shape) or (
            not isinstance(text, str) and any(isinstance(p, bool) for p in parts)):
        raise ModelError(f"input shape {text!r} is invalid; expected C,H,W as positive "
                         "integers, e.g. 3,32,32 (or fewer dimensions for a model that takes "
                         "them, e.g. 784)")
    return shape


def _padding(module: nn.Conv2d) -> tuple[int, int]:
    pad = module.padding
    if isinstance(pad, str):  # "valid" or "same"
        if pad == "valid":
            return (0, 0)
        return tuple(module.dilation[i] * (module.kernel_size[i] - 1) // 2  # type: ignore
                     for i in range(2))
    return (int(pad[0]), int(pad[1]))


def layer_specs(model: nn.Module, input_shape: Sequence[int],
                example_input: torch.Tensor | None = None) -> list[LayerSpec]:
    """The ``nn.Linear`` / ``nn.Conv2d`` layers of ``model`` as :class:`LayerSpec`, in the
    order one forward pass runs them.

    Args:
        model: Any module; it is run once in eval mode under ``torch.no_grad`` (its mode is
            restored afterwards).
        input_shape: Shape of one input without the batch dimension, e.g. (3, 32, 32).
        example_input: The batch-of-one input to run (default: uniform in [0, 1), images as
            the zoo expects them). A layer's ``signed_inputs`` is True when the input it
            receives in this pass has a negative value: pass an input with negative values
            to model signed network inputs.

    Raises:
        ValueError: The model has a layer with weights that cannot be mapped (the same
            refusal as ``xbar simulate``, naming the layer), fails on that input shape, or
            has no Linear/Conv2d layer.

    Names are those of the mapped form (``lstm.l0.ih``, ``attn.q_proj``, ``deconv.cols``,
    ``conv1d.conv``: :mod:`xbar.mapping.lowering`), as the chip's layers are named. A grouped
    convolution is one groups = 1 layer with the block-diagonal matrix
    (:mod:`xbar.mapping.conv_forms`). A recurrent matrix is one ``"recurrent"`` layer whose
    output rows are its time steps. Any other module called more than once (shared weights)
    appears once per call, named ``name#2``, ``name#3`` ...; each call is timed as its own
    layer on its own tiles.
    """
    from xbar.mapping.convert import fold_batchnorm

    model, _ = fold_batchnorm(model)  # refuses layers that cannot be mapped, by name
    shape = tuple(int(s) for s in input_shape)
    x = example_input if example_input is not None else torch.rand((1, *shape))
    names = {m: n or type(m).__name__ for n, m in model.named_modules()}
    specs: list[LayerSpec] = []
    calls: dict[str, int] = {}

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        inp = inputs[0]
        name = names[module]
        calls[name] = calls.get(name, 0) + 1
        if calls[name] > 1:
            name = f"{name}#{calls[name]}"
        signed = bool((inp < 0).any())
        if getattr(module, "xbar_recurrent", False):
            base = names[module]
            if calls[base] > 1:  # another step of the same recurrent layer
                i = next(i for i, s in enumerate(specs) if s.name == base)
                prev = specs[i]
                steps = prev.out_hw[0] + 1
                specs[i] = LayerSpec(name=base, kind="recurrent", n_in=prev.n_in,
                                     n_out=prev.n_out, in_chw=(prev.n_in, steps, 1),
                                     out_hw=(steps, 1), signed_inputs=prev.signed_inputs
                                     or signed)
            else:
                specs.append(LayerSpec(name=base, kind="recurrent", n_in=module.in_features,
                                       n_out=module.out_features,
                                       in_chw=(module.in_features, 1, 1), out_hw=(1, 1),
                                       signed_inputs=signed))
            return
        if isinstance(module, nn.Conv2d):  # groups = 1 in the mapped form
            if inp.dim() == 3:
                inp, output = inp.unsqueeze(0), output.unsqueeze(0)
            _, c, h, w = inp.shape
            _, _, ho, wo = output.shape
            kh, kw = module.kernel_size
            specs.append(LayerSpec(
                name=name, kind="conv", n_in=(module.in_channels // module.groups) * kh * kw,
                n_out=module.out_channels, in_chw=(int(c), int(h), int(w)),
                out_hw=(int(ho), int(wo)), kernel=(kh, kw), stride=tuple(module.stride),
                padding=_padding(module), dilation=tuple(module.dilation),
                groups=module.groups, signed_inputs=signed))
        else:
            vectors = int(inp.numel() // inp.shape[-1] // max(1, int(inp.shape[0])))
            if inp.dim() == 1:
                vectors = 1
            specs.append(LayerSpec(
                name=name, kind="linear", n_in=module.in_features, n_out=module.out_features,
                in_chw=(module.in_features, 1, vectors), out_hw=(1, vectors),
                signed_inputs=signed))

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Linear, nn.Conv2d))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    except Exception as exc:  # a user's model can fail in any way on a wrong shape
        raise ModelError(f"the model fails on an input of shape {tuple(x.shape)} (batch of "
                         f"one, input shape {shape}): {type(exc).__name__}: {exc}; check "
                         f"layer_specs(input_shape={shape})") from None
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if not specs:
        raise ModelError("the model has no nn.Linear or nn.Conv2d layer to map onto crossbars")
    return specs
