"""The golden cases beside the shipped policies (policies/*.test.yaml), as pytest cases.

``router policy test policies`` runs the same cases with the same runner; a policy change that breaks
one fails CI here, with the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from router.classifier.predict import ClassifierModel
from router.offline.golden import Located, golden_files, load_cases, render, run_cases
from router.offline.router import OfflineRouter
from router.policy.compile import load_policy

POLICIES = Path(__file__).parents[2] / "policies"
CASES = load_cases(golden_files(POLICIES))


@pytest.fixture(scope="module")
def router(classifier_model: ClassifierModel) -> OfflineRouter:
    return OfflineRouter(load_policy(POLICIES, env={}), classifier_model)


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 15


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_case(router: OfflineRouter, case: Located) -> None:
    [outcome] = run_cases(router, [case])
    assert outcome.ok, render([outcome])
