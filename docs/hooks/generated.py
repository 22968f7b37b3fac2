"""MkDocs hook: the pages' generated parts, computed at build time so that
they cannot go stale.

- ``<!-- generated: cli -->`` (docs/cli.md) becomes the reference of every
  ``kmallocwd`` command and option, read from the argparse parser itself;
- ``<!-- generated: protocol-table -->`` becomes ``kmallocwd protocols
  --markdown``, the built-in protocols' table, read from the protocol files.

A marker that cannot be filled fails the build (no stale or empty page).
"""

from __future__ import annotations

import argparse
import html
import importlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI_MARKER = "<!-- generated: cli -->"
TABLE_MARKER = "<!-- generated: protocol-table -->"
# Where the parser may live (the CLI may become a package).
PARSER_FACTORIES = ("kmallocwd.cli:build_parser", "kmallocwd.cli.main:build_parser",
                    "kmallocwd.cli.parser:build_parser")


def _parser() -> argparse.ArgumentParser:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    for spec in PARSER_FACTORIES:
        module, _, name = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
        return factory()
    raise RuntimeError(f"docs hook: no kmallocwd parser factory among {PARSER_FACTORIES}")


def _cell(text: str) -> str:
    """Text for a Markdown table cell: escaped, one line, no pipes."""
    return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise RuntimeError("docs hook: the kmallocwd parser has no subcommands")


def _option_rows(parser: argparse.ArgumentParser) -> list[str]:
    formatter = parser._get_formatter()
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            name = ", ".join(f"`{o}`" for o in action.option_strings)
        else:
            name = f"`{action.metavar or action.dest}`"
        if action.option_strings and action.nargs != 0:
            arg = formatter._format_args(action, formatter._get_default_metavar_for_optional(action))
            arg = f"`{arg}`"
        else:
            arg = ""
        text = formatter._expand_help(action) if action.help else ""
        if action.choices and not isinstance(action, argparse._SubParsersAction):
            text += f" (one of: {', '.join(map(str, action.choices))})"
        rows.append(f"| {name} | {arg} | {_cell(text)} |")
    return rows


def cli_reference() -> str:
    os.environ["COLUMNS"] = "80"  # argparse wraps the usage lines to this width
    parser = _parser()
    sub = _subparsers(parser)
    summaries = {a.dest: a.help or "" for a in sub._choices_actions}
    out = ["| command | what it does |", "|---|---|"]
    for name in sub.choices:
        out.append(f"| [`kmallocwd {name}`](#{name}) | {_cell(summaries.get(name, ''))} |")
    for name, p in sub.choices.items():
        out += ["", f"## `kmallocwd {name}` {{#{name}}}", ""]
        if p.description:
            out += [html.escape(" ".join(p.description.split()), quote=False), ""]
        out += ["```text", p.format_usage().strip(), "```", ""]
        rows = _option_rows(p)
        if rows:
            out += ["| option | argument | meaning |", "|---|---|---|", *rows]
        if p.epilog:
            out += ["", html.escape(" ".join(p.epilog.split()), quote=False)]
    return "\n".join(out) + "\n"


def protocol_table() -> str:
    proc = subprocess.run([sys.executable, "-m", "kmallocwd", "protocols", "--markdown"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 or not proc.stdout.startswith("|"):
        raise RuntimeError("docs hook: `kmallocwd protocols --markdown` failed: "
                           + proc.stderr.strip()[-500:])
    return proc.stdout


_cache: dict[str, str] = {}


def on_pre_build(config) -> None:
    """Each build (``mkdocs serve`` rebuilds too) reads the code afresh."""
    _cache.clear()


def on_page_markdown(markdown: str, page, config, files) -> str:
    if CLI_MARKER in markdown:
        if "cli" not in _cache:
            _cache["cli"] = cli_reference()
        markdown = markdown.replace(CLI_MARKER, _cache["cli"])
    if TABLE_MARKER in markdown:
        if "table" not in _cache:
            _cache["table"] = protocol_table()
        markdown = markdown.replace(TABLE_MARKER, _cache["table"])
    return markdown
