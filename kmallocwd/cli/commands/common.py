"""What several commands share: naming a protocol (-p NAME or
--protocol-file F) and reading it."""

from __future__ import annotations

import argparse

from kmallocwd import protocols
from kmallocwd.cli.argtypes import choice


def add_protocol_options(p: argparse.ArgumentParser, default: str | None = None,
                         required: bool = False) -> None:
    """-p NAME | --protocol-file F (stress, check, litmus, replay, ablate)."""
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--protocol", "-p", default=None, type=choice(protocols.NAMES, "protocol"),
                   help=f"a built-in protocol (kmallocwd/protocols/NAME.toml)"
                   f"{f', default {default}' if default else ''}: {', '.join(protocols.NAMES)}")
    g.add_argument("--protocol-file", metavar="FILE", default=None,
                   help="a protocol file of your own (format: docs/protocols.md); its C is "
                   "generated and compiled on first use, then cached")


def add_build_option(p: argparse.ArgumentParser) -> None:
    """--build kernel|c11 (stress, ablate, protocols --c)."""
    from kmallocwd.protocols.builds import BUILDS, DEFAULT

    p.add_argument("--build", default=DEFAULT, type=choice(BUILDS, "build"),
                   help="which definitions of READ_ONCE, smp_wmb() ... the protocol's C is "
                   "compiled with: 'kernel', Linux's own (volatile accesses, compiler-only "
                   "barriers on x86), or 'c11', C11 atomics and fences (what ThreadSanitizer "
                   f"checks; compiled on first use) (default {DEFAULT})")


def spec_from(args: argparse.Namespace, default: str | None = None) -> protocols.Spec:
    """The protocol the options name (or ``default``); UsageError if bad."""
    if args.protocol_file is not None:
        return protocols.load_path(args.protocol_file)
    return protocols.resolve(args.protocol or default)


def specs_from(args: argparse.Namespace, all_if_none: bool = False) -> list[protocols.Spec]:
    """The protocol the options name, or every built-in when none is named
    and ``all_if_none``."""
    if args.protocol is None and args.protocol_file is None and all_if_none:
        return list(protocols.PROTOCOLS)
    return [spec_from(args)]


def add_report_options(p: argparse.ArgumentParser, json: str, junit: str, annotate: str,
                       metavar: str = "PATH") -> None:
    """--json, --junit, --annotate github|none and --codequality (stress, check,
    ablate, campaign), with the command's own words for what each holds;
    report_outputs() checks their targets."""
    p.add_argument("--json", metavar=metavar, default=None, help=json)
    p.add_argument("--junit", metavar=metavar, default=None, help=junit)
    p.add_argument("--annotate", choices=("github", "none"), default=None, help=annotate)
    p.add_argument("--codequality", metavar=metavar, default=None,
                   help="also write the findings as a GitLab Code Quality report (JSON)")


def report_outputs(args: argparse.Namespace, inputs) -> tuple:
    """The command's ``--json``, ``--junit`` and ``--codequality`` targets,
    each checked by outpath (None where the option is not given)."""
    from kmallocwd import outpath

    return tuple(None if getattr(args, name) is None else
                 outpath.check_output(getattr(args, name), f"--{name}", inputs)
                 for name in ("json", "junit", "codequality"))
