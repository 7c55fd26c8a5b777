"""The ``xbar`` command line: :mod:`.main` and one module per subcommand."""
