"""Reading apt's plan, and naming the packages as the Debian archive does."""

from __future__ import annotations

from sovstack.bundle.collectors.debs import Planned, parse_plan, update_problems

SIMULATION = "\n".join(
    [
        "NOTE: This is only a simulation!",
        "Reading package lists...",
        "Inst libbpf1 (1:1.1.2-0+deb12u1 Debian:12.15/oldstable [amd64])",
        "Inst libc6 [2.36-9+deb12u9] (2.36-9+deb12u14 Debian:12.15/oldstable, "
        "Debian-Security:12/oldstable-security [amd64])",
        "Inst python3-setuptools-whl (66.1.1-1+deb12u2 Debian:12.15/oldstable [all])",
        "Conf libbpf1 (1:1.1.2-0+deb12u1 Debian:12.15/oldstable [amd64])",
    ]
)


def test_the_plan_lists_new_and_upgraded_packages_once() -> None:
    assert parse_plan(SIMULATION) == [
        Planned("libbpf1", "1:1.1.2-0+deb12u1", "amd64", "Debian:12.15/oldstable"),
        Planned(
            "libc6",
            "2.36-9+deb12u14",
            "amd64",
            "Debian:12.15/oldstable, Debian-Security:12/oldstable-security",
        ),
        Planned("python3-setuptools-whl", "66.1.1-1+deb12u2", "all", "Debian:12.15/oldstable"),
    ]


def test_an_epoch_is_quoted_in_apts_cache_and_dropped_in_the_pool_name() -> None:
    planned = parse_plan(SIMULATION)[0]
    assert planned.cached_name == "libbpf1_1%3a1.1.2-0+deb12u1_amd64.deb"
    assert planned.pool_name == "libbpf1_1.1.2-0+deb12u1_amd64.deb"


UPDATE = "\n".join(
    [
        "Hit:1 http://deb.debian.org/debian bookworm InRelease",
        "Err:2 http://127.0.0.1:9 bookworm InRelease",
        "  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)",
        "Reading package lists...",
        "W: Failed to fetch http://127.0.0.1:9/dists/bookworm/InRelease  Could not connect",
        "W: Some index files failed to download. They have been ignored, or old ones used instead.",
    ]
)


def test_a_source_apt_could_not_read_is_caught_though_apt_exits_0() -> None:
    assert update_problems(UPDATE) == [
        "Err:2 http://127.0.0.1:9 bookworm InRelease",
        "W: Failed to fetch http://127.0.0.1:9/dists/bookworm/InRelease  Could not connect",
    ]
    assert update_problems("Hit:1 http://deb.debian.org/debian bookworm InRelease\n") == []
