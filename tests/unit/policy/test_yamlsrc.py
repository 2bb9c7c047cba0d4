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


def test_aliases_are_refused_with_their_line() -> None:
    for text, line in (("x: &a [*a]\n", 1), ("a: &x 1\nb: *x\n", 2)):
        doc = parse_yaml(text, "p.yaml", {})
        assert [str(i) for i in doc.issues] == [
            f"p.yaml:{line}: YAML syntax: aliases (*name) are not allowed in policy files: write the value out"
        ]


def test_a_billion_laughs_costs_nothing() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 7):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ",".join(f"*{prev}" for _ in range(9)) + "]")
    doc = parse_yaml("\n".join(lines), "p.yaml", {})
    assert doc.data is None
    assert "aliases" in str(doc.issues[0])


def test_deep_nesting_is_refused() -> None:
    doc = parse_yaml("x: " + "[" * 100 + "]" * 100, "p.yaml", {})
    assert "nested deeper than 64 levels" in str(doc.issues[0])


def test_expanded_values_are_never_echoed() -> None:
    doc = parse_yaml("url: ${POOL}\n", "p.yaml", {"POOL": "http://user:s3cret@pool:8000"})
    assert doc.redact("endpoint 'http://user:s3cret@pool:8000' is bad") == "endpoint '${POOL}' is bad"
