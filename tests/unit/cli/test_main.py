from pathlib import Path

import pytest

from router.cli.main import main

FIXTURES = Path(__file__).parents[2] / "fixtures" / "policies"


def test_policy_check_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", str(FIXTURES / "good" / "split")]) == 0
    assert "ok: 2 file(s), 2 clusters, 1 model aliases, 2 routes" in capsys.readouterr().out


def test_policy_check_reports_every_error_with_file_and_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", str(FIXTURES / "bad" / "unknown-cluster.yaml")]) == 1
    err = capsys.readouterr().err
    assert "unknown-cluster.yaml:12: routes[0].cluster: unknown cluster 'poool'" in err
    assert "1 error(s)" in err


def test_policy_reference_writes_markdown(tmp_path: Path) -> None:
    out = tmp_path / "ref.md"
    assert main(["policy", "reference", "--out", str(out)]) == 0
    assert out.read_text().startswith("# Policy reference")


def test_serve_refuses_a_bad_policy(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--policies", str(FIXTURES / "bad" / "fallback-cycle.yaml"), "--port", "0"]) == 2
    assert "fallback cycle" in capsys.readouterr().err
