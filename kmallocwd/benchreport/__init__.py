"""``kmallocwd bench-report``: one run of ``make bench`` (the JSON file that
pytest-benchmark writes) as tables of ns per operation with each figure's
ratio to a baseline protocol beside it, and PNG charts.

One job per module:

- model.py:    the kinds, roles and modes the suites record; Figure, Run
- reader.py:   reading the file (size limit, regular files only)
- validate.py: checking one benchmark's extra_info, one line per bad key
- load.py:     file -> Run (parse, check, drop unknown figures with a warning)
- analyse.py:  scan linearity and limit, reference, duty, scaling, overhead
- keyfigures.py: the few headline numbers, and the benchmarks' targets
- tables.py:   the text report
- jsonout.py:  the JSON report
- plot.py:     the PNG charts

The figures are those the benchmarks timed inside C (``extra_info`` of
each benchmark, see bench/harness.py), not pytest-benchmark's own batch
timings, which include the cffi call and the threads' start.
"""

from .analyse import loglog_slope, scan_linearity
from . import keyfigures
from .keyfigures import KeyFigure, key_figures, targets
from .jsonout import to_dict
from .load import SIZE_LIMIT, load
from .model import *  # noqa: F401,F403 (the names the suites record)
from .model import BenchReportError, Figure, PlotUnavailable, Run
from .tables import render

__all__ = ["BenchReportError", "Figure", "KeyFigure", "PlotUnavailable", "Run", "SIZE_LIMIT",
           "key_figures", "keyfigures", "load", "loglog_slope", "render", "scan_linearity",
           "targets", "to_dict"]
