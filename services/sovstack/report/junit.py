"""``junit.xml``: one testcase per control, for CI dashboards.

Not satisfied is a ``<failure>``, an error or a check that did not run is an
``<error>``, cannot-yet-be-shown and not-assessed controls are ``<skipped>``
with their reason; every one carries the message.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from sovstack.report.model import CONTROL_ERROR, NOT_SATISFIED, SATISFIED, Finding

__all__ = ["junit_xml"]


def junit_xml(findings: tuple[Finding, ...]) -> bytes:
    suite = ET.Element("testsuite", name="sovstack make audit", tests=str(len(findings)))
    counts = {"failures": 0, "errors": 0, "skipped": 0}
    for finding in findings:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=finding.framework,
            name=f"{finding.control_id} {finding.title}",
            time=f"{sum(c.duration_s for c in finding.checks):.3f}",
        )
        if finding.state == SATISFIED:
            continue
        tag, counter = {
            NOT_SATISFIED: ("failure", "failures"),
            CONTROL_ERROR: ("error", "errors"),
        }.get(finding.state, ("skipped", "skipped"))
        counts[counter] += 1
        node = ET.SubElement(case, tag, message=f"{finding.state}: {finding.reason}")
        node.text = "\n".join(
            f"{c.check} on {c.where}: {c.result}: {c.message}" for c in finding.checks
        )
    for name, value in counts.items():
        suite.set(name, str(value))
    ET.indent(suite)
    text: bytes = ET.tostring(suite, encoding="utf-8", xml_declaration=True)
    return text + b"\n"
