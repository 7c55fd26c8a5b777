"""Parameter sweeps: plan, parameters, workers, results store, plot."""
