"""The command line: it parses the arguments, calls the library (the API,
kmallocwd/api.py, and the packages under it) and renders what comes back.
Nothing outside this package imports it.

- ``main``: the entry point (``kmallocwd`` and ``python -m kmallocwd``);
- ``commands/``: one module per subcommand;
- ``argtypes``: the options' types (limits from kmallocwd/limits.py);
- ``progress``: progress bars on a terminal;
- ``scancost``: ``python -m kmallocwd.cli.scancost``, the watchdog's own cost."""

from kmallocwd.cli.main import Parser, build_parser, main  # noqa: F401
