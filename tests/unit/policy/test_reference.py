from router.policy.reference import SECTIONS, render_reference


def test_reference_documents_every_field() -> None:
    text = render_reference()
    for _, model in SECTIONS:
        for name, info in model.model_fields.items():
            assert f"| `{info.alias or name}` |" in text  # the key a policy writes (`not`, not `not_`)
            assert info.description, f"{model.__name__}.{name} has no description"
    assert "| `connect_s` | number | `2.0` | > 0, ≤ 60 |" in text


def test_types_read_like_prose() -> None:
    text = render_reference()
    assert "| `clusters` | map of string to VllmCluster or FrontierCluster |" in text
    assert "| `fallbacks` | list of string or null |" in text
    assert "| `kind` | `vllm` or `openai` | required |" in text


def test_committed_reference_is_up_to_date() -> None:
    from pathlib import Path

    committed = (Path(__file__).parents[3] / "policies" / "REFERENCE.md").read_text()
    assert committed.rstrip("\n") == render_reference().rstrip("\n"), (
        "policies/REFERENCE.md is stale: run `router policy reference --out policies/REFERENCE.md`"
    )
