"""The CLI's subcommands; each module has ``register(subparsers)``, which
adds its parser and sets ``func``.  Add a command by adding its module here."""

from kmallocwd.cli.commands import (ablate_cmd, bench_report_cmd, cache_cmd, campaign_cmd,
                                    check_cmd, classify_cmd, demo_cmd, litmus_cmd,
                                    protocols_cmd, replay_cmd, run_cmd, scenarios_cmd,
                                    stress_cmd)

COMMANDS = [stress_cmd, check_cmd, ablate_cmd, replay_cmd, litmus_cmd, protocols_cmd, demo_cmd,
            bench_report_cmd, run_cmd, scenarios_cmd, classify_cmd, campaign_cmd, cache_cmd]
