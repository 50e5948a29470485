"""Subcommands of the ``wavegrad`` CLI, one module each: ``register(sub, name, formatter)`` adds the
subparser (with ``set_defaults(func=run)``) and ``run(args) -> int`` does the work. Errors a user can fix
are raised as :class:`wavegrad.errors.UserInputError`; ``wavegrad.cli.main`` prints them as one line."""
