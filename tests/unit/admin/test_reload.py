import time
from pathlib import Path

from router.admin.reload import snapshot


def test_snapshot_changes_with_content_and_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("x: 1\n")
    before = snapshot(tmp_path)
    assert snapshot(tmp_path) == before
    time.sleep(0.01)
    (tmp_path / "a.yaml").write_text("x: 12\n")
    after = snapshot(tmp_path)
    assert after != before
    (tmp_path / "b.yaml").write_text("")
    assert len(snapshot(tmp_path)) == 2
