"""The CLI's subcommands; each module has ``register(subparsers)``, which
adds its parser and sets ``func``.  Add a command by adding its module here."""

from kmallocwd.commands import demo_cmd, protocols_cmd, stress_cmd

COMMANDS = [stress_cmd, protocols_cmd, demo_cmd]
