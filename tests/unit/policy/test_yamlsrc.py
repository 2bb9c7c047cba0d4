from __future__ import annotations

from router.policy.yamlsrc import dotted, parse_yaml


def test_lines_of_nested_keys_and_list_items() -> None:
    doc = parse_yaml("a:\n  b:\n    - x\n    - c: 1\n", "f.yaml", env={})
    assert doc.data == {"a": {"b": ["x", {"c": 1}]}}
    assert doc.lines[("a",)] == 1
    assert doc.lines[("a", "b")] == 2
    assert doc.lines[("a", "b", 1, "c")] == 4
    assert doc.line_of(("a", "b", 1, "c", "deeper")) == 4


def test_env_expansion_with_default_and_missing() -> None:
    doc = parse_yaml("a: ${SET}\nb: ${UNSET:-fallback}\nc: x-${MISSING}-y\n", "f.yaml", env={"SET": "v"})
    assert doc.data == {"a": "v", "b": "fallback", "c": "x--y"}
    assert [(i.line, i.path) for i in doc.issues] == [(3, "c")]


def test_duplicate_keys_and_syntax_errors_and_empty_files() -> None:
    assert parse_yaml("a: 1\na: 2\n", "f", env={}).issues[0].line == 2
    assert "YAML syntax" in parse_yaml("a: [\n", "f", env={}).issues[0].message
    assert parse_yaml("", "f", env={}).issues[0].message == "the file is empty"


def test_dotted() -> None:
    assert dotted(("routes", 3, "match", "models", 0)) == "routes[3].match.models[0]"
