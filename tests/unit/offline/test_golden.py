"""The golden-test runner: case files are validated with file and line; failures print a diff."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from router.classifier.predict import ClassifierModel
from router.errors import PolicyError
from router.offline.golden import golden_files, load_cases, render, run_cases
from router.offline.router import OfflineRouter
from router.policy.compile import load_policy

POLICIES = Path(__file__).parents[3] / "policies"


def test_invalid_case_files_report_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "p.test.yaml"
    f.write_text("cases: []\n")
    with pytest.raises(PolicyError) as info:
        load_cases([f])
    assert "p.test.yaml:1" in str(info.value.issues[0])


def test_a_bad_case_fails_on_its_own_and_the_others_run(tmp_path: Path, classifier_model: ClassifierModel) -> None:
    f = tmp_path / "p.test.yaml"
    f.write_text(
        "cases:\n"
        "  - name: both inputs\n    prompt: hi\n    messages: []\n    expect: {route: r, cluster: c}\n"
        "  - name: typo\n    model: small\n    prompt: hi\n    expect: {route: 'model:small', clustr: small-8b}\n"
        "  - name: fine\n    model: small\n    prompt: hi\n"
        "    expect: {route: 'model:small', cluster: small-8b, fallbacks: [frontier-mini]}\n"
    )
    cases = load_cases([f])
    outcomes = run_cases(OfflineRouter(load_policy(POLICIES, env={}), classifier_model), cases)
    assert [(o.where.name, o.ok) for o in outcomes] == [("both inputs", False), ("typo", False), ("fine", True)]
    text = render(outcomes)
    assert "FAIL  both inputs" in text
    assert "exactly one of `prompt` or `messages`" in text
    assert "invalid case: cases[1].expect.clustr (line 9)" in text
    assert "1 passed, 2 failed" in text


def test_fallbacks_are_asserted(tmp_path: Path, classifier_model: ClassifierModel) -> None:
    f = tmp_path / "p.test.yaml"
    f.write_text(
        "cases:\n  - name: wrong chain\n    model: small\n    prompt: hi\n"
        "    expect: {route: 'model:small', cluster: small-8b, fallbacks: [frontier-strong]}\n"
    )
    [outcome] = run_cases(OfflineRouter(load_policy(POLICIES, env={}), classifier_model), load_cases([f]))
    assert not outcome.ok
    assert "fallbacks: expected ['frontier-strong'], got ['frontier-mini']" in render([outcome])


def test_a_failing_case_prints_a_diff(tmp_path: Path, classifier_model: ClassifierModel) -> None:
    f = tmp_path / "p.test.yaml"
    f.write_text(
        "cases:\n  - name: wrong\n    prompt: 'Translate to Dutch: thank you'\n"
        "    expect: {route: coding, cluster: frontier-strong}\n"
    )
    [outcome] = run_cases(OfflineRouter(load_policy(POLICIES, env={}), classifier_model), load_cases([f]))
    assert not outcome.ok
    text = render([outcome])
    assert "FAIL  wrong" in text
    assert "route: expected 'coding', got 'translation'" in text
    assert "cluster: expected 'frontier-strong', got 'small-8b'" in text
    assert "reason: rule 'translation'" in text
    assert "0 passed, 1 failed" in text


@pytest.mark.integration
def test_cli_exit_codes(tmp_path: Path) -> None:
    shutil.copy(POLICIES / "default.yaml", tmp_path / "default.yaml")
    (tmp_path / "x.test.yaml").write_text(
        "cases:\n  - name: ok\n    model: small\n    prompt: hi\n"
        "    expect: {route: 'model:small', cluster: small-8b}\n"
    )
    ok = subprocess.run(
        [sys.executable, "-m", "router", "policy", "test", str(tmp_path)], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "1 passed, 0 failed" in ok.stdout
    (tmp_path / "y.test.yaml").write_text(
        "cases:\n  - name: bad\n    model: small\n    prompt: hi\n"
        "    expect: {route: 'model:small', cluster: nowhere}\n"
    )
    bad = subprocess.run(
        [sys.executable, "-m", "router", "policy", "test", str(tmp_path)], capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert "cluster: expected 'nowhere', got 'small-8b'" in bad.stdout
    assert len(golden_files(tmp_path)) == 2
