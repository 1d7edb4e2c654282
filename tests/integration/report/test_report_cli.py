"""``sovstack audit report``: exit 0 pass, 1 a signed pack with failures, 2 usage."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from sovstack.cli import cli
from tests.integration.report.conftest import Site, make_policies
from tests.integration.report.test_report import CATALOGUE


def _report(site: Site, policies: Path, out: Path, *extra: str) -> Result:
    args = [
        "audit",
        "report",
        "--out",
        str(out),
        "--signing-key",
        str(site.report_key),
        "--policies",
        str(policies),
        "--opa",
        str(site.opa),
        "--no-screenshot",
        "--clock",
        "2026-09-01T12:00:00Z",
        *extra,
    ]
    return CliRunner().invoke(cli, args)


def _site_args(site: Site, bundle: bool = True) -> list[str]:
    args = [
        "--log",
        str(site.log),
        str(site.log_pubkey),
        "--witness-state",
        str(site.witness_state),
    ]
    if bundle:
        args += ["--bundle", str(site.bundle), "--bundle-pubkey", str(site.bundle_pubkey)]
    return args


def test_every_control_satisfied_exits_0_and_the_pack_verifies(site: Site, tmp_path: Path) -> None:
    policies = make_policies(tmp_path, CATALOGUE)
    result = _report(site, policies, tmp_path / "pack", *_site_args(site))
    assert result.exit_code == 0, result.output
    assert "5 ÷ 5 = 100.0 %" in result.output and "verdict: pass" in result.output
    verified = CliRunner().invoke(
        cli,
        ["audit", "report", "verify", str(tmp_path / "pack"), "--pubkey", str(site.report_pubkey)],
    )
    assert verified.exit_code == 0, verified.output


def test_a_missing_bundle_exits_1_with_a_signed_pack_that_says_why(
    site: Site, tmp_path: Path
) -> None:
    policies = make_policies(tmp_path, CATALOGUE)
    result = _report(site, policies, tmp_path / "pack", *_site_args(site, bundle=False))
    assert result.exit_code == 1, result.output
    assert "fw/BUN-1: bundle verify on no bundle: not provided" in result.output
    assert (tmp_path / "pack" / "report.dsse.json").is_file()
    verified = CliRunner().invoke(
        cli,
        ["audit", "report", "verify", str(tmp_path / "pack"), "--pubkey", str(site.report_pubkey)],
    )
    assert verified.exit_code == 0 and "verdict fail" in verified.output


def test_usage_errors_exit_2_and_sign_nothing(site: Site, tmp_path: Path) -> None:
    policies = make_policies(tmp_path, CATALOGUE)
    (tmp_path / "exists").mkdir()
    assert _report(site, policies, tmp_path / "exists").exit_code == 2
    missing_log = _report(site, policies, tmp_path / "p1", "--log", str(tmp_path), "/no/such.pub")
    assert missing_log.exit_code == 2
    assert "does not exist" in missing_log.output
    bad_clock = _report(site, policies, tmp_path / "p2", "--clock", "yesterday")
    assert bad_clock.exit_code == 2
    for name in ("p1", "p2"):
        assert not (tmp_path / name).exists()
        assert not (tmp_path / f"{name}.incomplete" / "report.dsse.json").exists()
