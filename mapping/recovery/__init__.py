"""Recovery methods: KD, SRAM adaptation (RSA, OSA, bias-only), R-V-W, and their comparison."""
