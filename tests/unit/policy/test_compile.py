"""Policy loading: good fixtures load, each bad fixture reports its file, line, key path and message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from router.errors import PolicyError
from router.policy.compile import compile_texts, load_policy, policy_files
from router.types import Target

FIXTURES = Path(__file__).parents[2] / "fixtures" / "policies"
BAD = sorted((FIXTURES / "bad").glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (\d+): ([^:]*): (.+)$")


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_policy_reports_file_line_and_key(path: Path) -> None:
    match = EXPECT.match(path.read_text().splitlines()[0])
    assert match, f"{path.name} must start with '# expect: LINE: PATH: MESSAGE'"
    line, key, message = int(match[1]), match[2], match[3]
    with pytest.raises(PolicyError) as info:
        load_policy(path, env={})
    issues = info.value.issues
    assert any(i.file == str(path) and i.line == line and i.path == key and message in i.message for i in issues), (
        "\n".join(map(str, issues))
    )


def test_good_policies_load() -> None:
    policy = load_policy(FIXTURES / "good" / "minimal.yaml", env={})
    assert policy.pinned["small"].targets == (Target("pool"),)
    split = load_policy(FIXTURES / "good" / "split", env={})
    assert len(split.files) == 2
    pool = split.clusters["pool"]
    assert getattr(pool, "endpoints") == ["http://a:8000/v1", "http://b:8000/v1"]  # noqa: B009


def test_env_expansion_splits_endpoint_lists() -> None:
    split = load_policy(FIXTURES / "good" / "split", env={"SPLIT_POOL_URLS": "http://x/v1/, http://y/v1"})
    assert getattr(split.clusters["pool"], "endpoints") == ["http://x/v1", "http://y/v1"]  # noqa: B009


def test_a_policy_needs_aliases() -> None:
    with pytest.raises(PolicyError, match="no model aliases"):
        compile_texts([("p.yaml", "version: 1\n")], env={})


def test_directory_listing_skips_golden_tests(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("")
    (tmp_path / "a.test.yaml").write_text("")
    (tmp_path / "notes.txt").write_text("")
    assert [p.name for p in policy_files(tmp_path)] == ["a.yaml"]
    (tmp_path / "sub").mkdir()
    with pytest.raises(PolicyError, match="no policy files"):
        load_policy(tmp_path / "sub", env={})


def test_bundled_policy_is_valid() -> None:
    policy = load_policy(Path(__file__).parents[3] / "policies", env={})
    assert {"auto", "small", "strong"} <= set(policy.models)
    assert policy.warnings  # its pool is emulated until VLLM_SMALL_URLS is set


def test_a_policy_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("version: 1\n# " + "x" * (3 * 1024 * 1024) + "\n")
    with pytest.raises(PolicyError) as info:
        load_policy(big)
    assert "the limit is 2097152" in str(info.value)


def test_errors_never_echo_expanded_environment_values() -> None:
    text = "version: 1\nclusters:\n  p: {kind: vllm, endpoints: ['${POOL}'], model: m}\nmodels:\n  m: {cluster: p}\n"
    with pytest.raises(PolicyError) as info:
        compile_texts([("p.yaml", text)], env={"POOL": "ftp://user:s3cret@pool"})
    assert "s3cret" not in str(info.value)
    assert "${POOL}" in str(info.value)


def test_anthropic_clusters_must_state_their_output_cap() -> None:
    text = (
        "version: 1\nclusters:\n  c: {kind: frontier, model: anthropic/claude-sonnet-4-5}\nmodels:\n  m: {cluster: c}\n"
    )
    with pytest.raises(PolicyError) as info:
        compile_texts([("p.yaml", text)], env={})
    assert "p.yaml:3: clusters.c.default_max_tokens" in str(info.value)
    ok = text.replace("claude-sonnet-4-5}", "claude-sonnet-4-5, default_max_tokens: 2048}")
    assert compile_texts([("p.yaml", ok)], env={}).output_cap("c") == 2048


def test_the_digest_names_the_files_contents_not_their_directory() -> None:
    from router.policy.compile import digest

    text = (
        'version: 1\nclusters:\n  p: {kind: vllm, endpoints: ["http://a/v1"], model: m}\nmodels:\n  m: {cluster: p}\n'
    )
    a = compile_texts([("/etc/a/policy.yaml", text)], env={})
    b = compile_texts([("/srv/b/policy.yaml", text)], env={})
    assert a.digest == b.digest == digest([("policy.yaml", text)])
    assert len(a.digest) == 12
    assert compile_texts([("policy.yaml", text + "# a comment\n")], env={}).digest != a.digest
    assert compile_texts([("other.yaml", text)], env={}).digest != a.digest
