"""Lint: each fixture in tests/fixtures/policies/lint states the warning it must give (or `nothing`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from router.policy.compile import load_policy
from router.policy.lint import covers, lint
from router.policy.schema import Match

FIXTURES = sorted((Path(__file__).parents[2] / "fixtures" / "policies" / "lint").glob("*.yaml"))
WARNS = re.compile(r"^# warns: (?:(\d+): ([^:]*): (.+)|nothing)$")


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_each_fixture_gives_the_warning_it_states(path: Path) -> None:
    m = WARNS.match(path.read_text().splitlines()[0])
    assert m, f"{path.name} must start with '# warns: LINE: PATH: MESSAGE' or '# warns: nothing'"
    found = lint(load_policy(path, env={}))
    if m[1] is None:
        assert found == []
        return
    assert [(i.line, i.path) for i in found] == [(int(m[1]), m[2])]
    assert m[3] in found[0].message
    assert found[0].file == str(path)


def test_the_bundled_policy_lints_clean() -> None:
    assert lint(load_policy(Path(__file__).parents[3] / "policies", env={})) == []


def test_coverage_of_conditions() -> None:
    def m(**kw: object) -> Match:
        return Match.model_validate(kw)

    assert covers(m(), m(tenants=["a"]), 0.6)
    assert not covers(m(tenants=["a"]), m(), 0.6)
    assert covers(m(min_prompt_tokens=100), m(min_prompt_tokens=200), 0.6)
    assert not covers(m(min_prompt_tokens=200), m(min_prompt_tokens=100), 0.6)
    assert covers(m(headers={"x-team": "*"}), m(headers={"x-team": "ml"}), 0.6)
    assert not covers(m(headers={"x-team": "ml"}), m(headers={"x-team": "*"}), 0.6)
    assert not covers(m(tasks=["coding"], min_task_confidence=0.9), m(tasks=["coding"]), 0.6)
    assert covers(m(tasks=["coding"]), m(tasks=["coding"], min_task_confidence=0.9), 0.6)
    assert not covers(m(regex="a+"), m(regex="b+"), 0.6)
    assert not covers(m(stream=True), m(), 0.6)
