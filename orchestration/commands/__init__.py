"""One module per ``warehouse`` subcommand; importing a module registers its command.

Each command imports what it runs (Dagster, dbt, Great Expectations, the generator) inside
its own function, on purpose: those take seconds to import, and ``warehouse --help`` or a
mistyped flag should answer at once.
"""
