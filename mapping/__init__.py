"""Networks onto crossbars: PyTorch model conversion, data sets, model zoo, recovery methods."""
