"""Reusable recovery techniques, each one concept, used by the works' methods
(:mod:`xbar.mapping.recovery.charan2020`, :mod:`~xbar.mapping.recovery.itt_rna`,
:mod:`~xbar.mapping.recovery.correctnet`, :mod:`~xbar.mapping.recovery.lv2024`):

================  ===========================================================================
kd                knowledge distillation of a device-aware student (works 1, 2, 5)
sram              SRAM words beside the arrays, their selection and on-chip adaptation (1, 2)
rvw               read-verify-write programming of every cell (work 1's baseline)
fault_map         the test pass: a chip's stuck cells and variation as a map (work 3)
fault_aware       weight rows matched to crossbar rows on the map (work 3)
fault_train       fault-aware training against the map (work 3)
on_chip           on-device retraining that rewrites cells (work 3)
lipschitz         the Lipschitz-constant regulariser (work 4)
compensation      digital error-compensation layers (work 4)
adc_search        per-layer ADC resolution search (work 4)
chip_loop         a chip in the training loop: reads served, layers re-programmed (work 5)
iokd              I/O-guided progressive KD fine-tuning on the chip (work 5)
================  ===========================================================================
"""
