"""One module per ``xbar`` subcommand, each with ``register(subparsers)``."""
