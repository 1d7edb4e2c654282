"""The report as one self-contained HTML page: inline CSS, an inline SVG chart, no script.

The page loads nothing (no script, no stylesheet, font or image from
anywhere), so it can be mailed, archived and opened offline. Every value
from the log is HTML-escaped: client names come from the identity provider,
not from us. The chart stacks prompt and completion tokens per group.
"""

from __future__ import annotations

from html import escape
from typing import Final

from sovstack.usage.aggregate import MEASURES, Group, Report
from sovstack.usage.formats.tabular import COUNTS, checkpoint_fields

__all__ = ["to_html"]

_CSS: Final = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;
color:#1d232a}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border-bottom:1px solid #d5dae0;padding:.3rem .5rem;text-align:right;white-space:nowrap}
th:first-child,td.k{text-align:left}thead th{background:#eef1f4}
tr.total td{font-weight:600;border-top:2px solid #1d232a}
code{font-size:.85em;word-break:break-all}.u{color:#8a5a00;font-size:.85em}
.warn{color:#8a1c1c}svg text{font:12px system-ui,sans-serif}
"""
_PROMPT, _COMPLETION = "#3b6ea5", "#e08a2c"
_HEADS: Final = {
    "prompt_tokens": "prompt tokens",
    "completion_tokens": "completion tokens",
    "gpu_seconds": "GPU-seconds",
    "energy_j": "energy (J)",
}


def _label(group: Group) -> str:
    return " / ".join("(none)" if part is None else part for part in group.key)


def _figure(group: Group, name: str) -> str:
    value, unknown = group.sums[name], group.unknown[name]
    if unknown and unknown == group.requests:
        return '<span class="u">unknown</span>'
    text = f"{value:,}" if isinstance(value, int) else f"{value:,.3f}"
    if unknown:
        text += f' <span class="u">({unknown} unknown)</span>'
    return text


def _chart(report: Report) -> str:
    groups = report.groups
    if not groups:
        return "<p>No requests in the covered records.</p>"
    width, label_w, bar_h, gap = 900, 260, 18, 8
    scale_w = width - label_w - 90
    most = max(int(g.sums["prompt_tokens"] + g.sums["completion_tokens"]) for g in groups) or 1
    height = len(groups) * (bar_h + gap) + 30
    parts = [
        f'<svg role="img" aria-label="Tokens per group" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}">'
    ]
    for n, group in enumerate(groups):
        y = n * (bar_h + gap)
        prompt, completion = group.sums["prompt_tokens"], group.sums["completion_tokens"]
        w1, w2 = scale_w * prompt / most, scale_w * completion / most
        parts += [
            f'<text x="{label_w - 6}" y="{y + bar_h - 5}" text-anchor="end">'
            f"{escape(_label(group))}</text>",
            f'<rect x="{label_w}" y="{y}" width="{w1:.1f}" height="{bar_h}" fill="{_PROMPT}">'
            f"<title>prompt tokens: {prompt:,}</title></rect>",
            f'<rect x="{label_w + w1:.1f}" y="{y}" width="{w2:.1f}" height="{bar_h}"'
            f' fill="{_COMPLETION}"><title>completion tokens: {completion:,}</title></rect>',
            f'<text x="{label_w + w1 + w2 + 6:.1f}" y="{y + bar_h - 5}">'
            f"{int(prompt + completion):,}</text>",
        ]
    legend_y = len(groups) * (bar_h + gap) + 12
    parts += [
        f'<rect x="{label_w}" y="{legend_y}" width="12" height="12" fill="{_PROMPT}"/>',
        f'<text x="{label_w + 16}" y="{legend_y + 11}">prompt tokens</text>',
        f'<rect x="{label_w + 130}" y="{legend_y}" width="12" height="12" fill="{_COMPLETION}"/>',
        f'<text x="{label_w + 146}" y="{legend_y + 11}">completion tokens</text>',
        "</svg>",
    ]
    return "\n".join(parts)


def _table(report: Report) -> str:
    heads = [*report.by, *COUNTS, *(_HEADS[n] for n in MEASURES)]
    head = "".join(f"<th>{escape(h)}</th>" for h in heads)
    body = []
    for group in [*report.groups, report.total]:
        total = group is report.total
        keys = "".join(
            f'<td class="k">{escape("(none)" if k is None else k)}</td>' for k in group.key
        )
        if total:
            keys = f'<td class="k" colspan="{len(report.by)}">total</td>'
        counts = "".join(f"<td>{getattr(group, c):,}</td>" for c in COUNTS)
        sums = "".join(f"<td>{_figure(group, m)}</td>" for m in MEASURES)
        css = ' class="total"' if total else ""
        body.append(f"<tr{css}>{keys}{counts}{sums}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _checkpoints(report: Report) -> str:
    rows = "".join(
        f'<tr><td class="k">{escape(c["origin"])}</td><td>{c["size"]:,}</td>'
        f'<td class="k"><code>{c["root"]}</code></td></tr>'
        for c in map(checkpoint_fields, report.checkpoints)
    )
    return (
        "<table><thead><tr><th>log origin</th><th>entries covered</th><th>root hash (hex)</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def to_html(report: Report) -> str:
    by = ", ".join(report.by)
    notes = [
        "Figures are from the audit log alone, verified offline, and cover exactly the entries"
        " these signed checkpoints cover.",
        "Unknown values (a node without an energy counter, a stream that gave no usage, a"
        " request not finished at the checkpoint) are counted, not taken as zero.",
    ]
    if report.uncovered:
        notes.append(f"{report.uncovered} later entries are not covered by a checkpoint yet.")
    warnings = "".join(f'<li class="warn">{escape(w)}</li>' for w in report.warnings)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sovstack usage by {escape(by)}</title><style>{_CSS}</style></head>
<body><h1>Usage by {escape(by)}</h1>
<h2>Checkpoints covered</h2>{_checkpoints(report)}
<p>{"<br>".join(escape(n) for n in notes)}</p>
<h2>Tokens per group</h2>{_chart(report)}
<h2>Per group</h2>{_table(report)}
{f"<h2>Warnings</h2><ul>{warnings}</ul>" if warnings else ""}
</body></html>
"""
