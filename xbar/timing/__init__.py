"""Cycle-level timing of a mapped network: a SimPy event engine and its closed forms.

The engine never touches conductance values: it sees layer shapes (:class:`LayerSpec`), the
array/converter configuration (:class:`xbar.config.XbarConfig`) and the timing parameters
(:class:`xbar.config.TimingConfig`).
"""

from xbar.timing.closed_form import (LayerPlan, TilePlan, burst_cycles,
                                     layer_cycles_layer_schedule,
                                     network_cycles_layer_schedule, plan_layer, plan_network,
                                     tile_mvm_cycles)
from xbar.timing.engine import LatencyResult, LayerTiming, Timeline, simulate
from xbar.timing.network import LayerSpec

__all__ = ["LayerPlan", "LayerSpec", "LayerTiming", "LatencyResult", "TilePlan", "Timeline",
           "burst_cycles",
           "layer_cycles_layer_schedule", "network_cycles_layer_schedule",
           "plan_layer", "plan_network", "simulate", "tile_mvm_cycles"]
