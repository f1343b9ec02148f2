"""The one-command live demo: API, gateway and a simulated county's fleet, in compressed time.

Public API::

    from waste.demo import DemoOptions, DemoSummary, run_demo
    summary = run_demo(settings, DemoOptions(trips=16, speed=1500, headless=True))
    summary.ok          # every planted incident alerted, no honest trip, every bundle verified

``waste demo`` (``waste/cli.py``) is a thin wrapper. The pieces: ``options.py`` (what a run
is asked to do), ``datadir.py`` (the demo's own data directory, ``--fresh`` /
``--continue``, the 0600 tokens file), ``plan.py`` (the county and the day's labelled
trips, registered through the API), ``stack.py`` (the API server, the gateway with its
alert detection, the alert feed), ``board.py`` (trip states as custody steps are posted),
``pace.py`` (the fleet's progress and the watermark the sweep judges by), ``scoring.py``
(alerts against the labels), ``audit.py`` (every manifest's bundle verified offline),
``display.py`` (the live terminal view), ``summary.py``, ``run.py`` and ``cli.py``.
``docs/demo.md`` tells the whole story.
"""

from waste.demo.options import DemoOptions
from waste.demo.run import run_demo
from waste.demo.summary import DemoSummary

__all__ = ["DemoOptions", "DemoSummary", "run_demo"]
