"""One module per ``warehouse`` subcommand; importing a module registers its command."""
