"""Campaigns: a plan of stress (and ablate/check) cells fanned out on Dask.

The Python API under ``kmallocwd campaign``::

    from kmallocwd.campaign import Campaign, Options, load_plan, run_campaign
    c = Campaign(load_plan("examples/campaign.toml"))
    run_campaign(c, Options(workers=2))
    c.verdict()["exit_status"], c.to_dict()

Only ``engine`` needs Dask (``pip install 'kmallocwd[campaign]'``), and imports
it when a campaign runs."""

from kmallocwd.campaign.engine import INSTALL_HINT, Options, require_dask, run_campaign
from kmallocwd.campaign.junit import to_junit
from kmallocwd.campaign.plan import Cell, Plan, load_plan, parse_plan
from kmallocwd.campaign.results import Campaign, render

__all__ = ["Campaign", "Cell", "INSTALL_HINT", "Options", "Plan", "load_plan", "parse_plan",
           "render", "require_dask", "run_campaign", "to_junit"]
