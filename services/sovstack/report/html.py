"""``report.html``: the report a person reads, in one self-contained file.

No script, no external URL, no font or image fetched: the page's own
Content-Security-Policy forbids loading anything (``default-src 'none'``),
styles are inline. Links go only to the evidence files beside it, each shown
with its SHA-256. The summary prints the compliance figure and its formula;
every control is one row with its checks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import jinja2

from sovstack.report.logscan import RETENTION_MONTHS
from sovstack.report.model import Figure, Finding

__all__ = ["report_html"]

_TEMPLATE: Final = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="referrer" content="no-referrer">
<title>sovstack compliance evidence pack</title>
<style>
body { font: 14px/1.4 sans-serif; margin: 1.5em; color: #111; }
table { border-collapse: collapse; width: 100%; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: 4px 6px; vertical-align: top; text-align: left; }
th { background: #eee; }
code, .hash { font: 12px monospace; word-break: break-all; }
.satisfied { background: #d7f5d7; }
.not-satisfied { background: #f9d0d0; }
.error { background: #fbe3b0; }
.cannot-yet-be-shown { background: #e4e4fb; }
.not-assessed { background: #f0f0f0; }
.checks td { border: 0; border-bottom: 1px dotted #ccc; }
</style>
</head>
<body>
<h1>sovstack compliance evidence pack</h1>
<section id="summary" data-compliance="{{ '%.1f' % figure.percent }}"
 data-controls="{{ findings|length }}" data-verdict="{{ verdict }}">
<h2>Summary</h2>
<p id="verdict"><strong>Verdict: {{ verdict }}</strong> (generated {{ when }})</p>
<p id="compliance">Compliance: <strong>{{ '%.1f' % figure.percent }} %</strong></p>
<p id="formula">{{ figure.formula() }}</p>
<table>
<tr><th>controls</th><td id="controls-count">{{ findings|length }}</td></tr>
<tr><th>satisfied</th><td id="count-satisfied">{{ figure.satisfied }}</td></tr>
<tr><th>not satisfied</th><td id="count-not-satisfied">{{ figure.not_satisfied }}</td></tr>
<tr><th>error or not run</th><td id="count-error">{{ figure.errors }}</td></tr>
<tr><th>cannot yet be shown</th><td id="count-cannot-yet">{{ figure.cannot_yet }}</td></tr>
<tr><th>not assessed (planned, manual, not applicable)</th>
 <td id="count-not-assessed">{{ figure.not_assessed }}</td></tr>
<tr><th>catalogue</th><td class="hash">{{ catalogue_digest }}</td></tr>
</table>
<p>A control is satisfied only when every one of its checks ran and passed; an error, a
check that did not run, or a control with no executed check is never satisfied.</p>
</section>
{% if logs %}
<section id="logs">
<h2>Audit logs</h2>
<table>
<tr><th>log</th><th>entries</th><th>root hash</th><th>first record</th>
<th>age against the {{ months }}-month floor</th><th>witness consistency</th></tr>
{% for log in logs %}
<tr class="log">
<td><code>{{ log.origin }}</code><br><code>{{ log.directory }}</code>
{% if log.error %}<br><strong>{{ log.error }}</strong>{% endif %}</td>
<td class="entries">{{ log.entries }}</td>
<td class="hash">{{ log.root }}</td>
<td>{{ log.first_record }}</td>
<td>{{ log.retention }}</td>
<td>{{ log.witness }}</td>
</tr>
{% endfor %}
</table>
</section>
{% endif %}
<section id="controls">
<h2>Controls</h2>
<table>
<tr><th>framework and control</th><th>status</th><th>checks</th></tr>
{% for f in findings %}
<tr class="control {{ f.state }}" id="control-{{ loop.index }}" data-state="{{ f.state }}">
<td><strong>{{ f.framework }} {{ f.control_id }}</strong><br>{{ f.title }}
<br><small>catalogue: {{ f.catalogue_status }}</small>
{% if f.shared_with %}<br><small>shares checks with:
 {{ f.shared_with|join(', ') }}</small>{% endif %}
</td>
<td><strong>{{ f.state }}</strong>{% if f.reason %}<br><small>{{ f.reason }}</small>{% endif %}</td>
<td>{% if f.checks %}<table class="checks">
<tr><th>check</th><th>where</th><th>result</th><th>duration</th><th>message</th><th>evidence</th></tr>
{% for c in f.checks %}
<tr><td><code>{{ c.check }}</code></td><td>{{ c.where }}</td><td>{{ c.result }}</td>
<td>{{ '%.3f' % c.duration_s }} s</td><td>{{ c.message }}</td>
<td>{% if c.evidence %}<a href="{{ c.evidence }}">{{ c.evidence }}</a>
<br><span class="hash">sha256 {{ evidence.get(c.evidence, 'missing') }}</span>{% endif %}</td></tr>
{% endfor %}
</table>{% else %}no check: not assessed{% endif %}</td>
</tr>
{% endfor %}
</table>
</section>
</body>
</html>
"""

_ENV: Final = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)


def report_html(
    findings: tuple[Finding, ...],
    figure: Figure,
    verdict: str,
    evidence: dict[str, str],
    catalogue_digest: str,
    logs: list[dict[str, Any]],
    when: datetime,
) -> bytes:
    page = _ENV.from_string(_TEMPLATE).render(
        findings=findings,
        figure=figure,
        verdict=verdict,
        evidence=evidence,
        catalogue_digest=catalogue_digest,
        logs=logs,
        months=RETENTION_MONTHS,
        when=when.isoformat(),
    )
    return page.encode("utf-8")
