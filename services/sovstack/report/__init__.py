"""``make audit``: the signed, offline compliance evidence pack.

The report is computed from the control catalogue (``policies/controls/``):
each check a control names is run once over the inputs, each control
becomes one finding, and the pack is signed as a whole.

Modules, bottom up:

- :mod:`.model`    the semantics: a check's result, a control's state, the figure, the exit code
- :mod:`.context`  the inputs, the clock (fixed for reproducible runs), where evidence goes
- :mod:`.rego`     ``rego`` / ``rego-test`` checks: ``opa test`` and its coverage
- :mod:`.pytests`  ``pytest`` checks, and host checks with testinfra (unreachable: an error)
- :mod:`.logs`     ``audit`` checks on each log: verify, witness, inclusion;
  :mod:`.logscan` pairing and retention, from one pass over the records
- :mod:`.bundles`  the ``bundle verify`` check;
  :mod:`.policy_source` whether the tested policy files are the verified bundle's
- :mod:`.assess`   runs every check once and makes the findings
- :mod:`.oscal`, :mod:`.html`, :mod:`.junit`  the three views of the findings
- :mod:`.dsse`     the DSSE envelope over the in-toto statement of every file
- :mod:`.build`    staging folder, write, sign, rename; :mod:`.verify` checks a pack offline
- :mod:`.browser`  headless Chromium off the network (screenshot, DOM)

Errors: :mod:`.errors`.
"""

from sovstack.report.build import Outcome, build_report
from sovstack.report.context import Clock, Inputs, LogInput
from sovstack.report.errors import Refused, ReportError
from sovstack.report.verify import verify_report

__all__ = [
    "Clock",
    "Inputs",
    "LogInput",
    "Outcome",
    "Refused",
    "ReportError",
    "build_report",
    "verify_report",
]
