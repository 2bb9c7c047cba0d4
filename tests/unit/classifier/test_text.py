from __future__ import annotations

from router.classifier.text import HEAD_CHARS, STRUCTURE_NAMES, TAIL_CHARS, prompt_view, structure


def test_view_takes_the_system_head_and_the_last_user_turn() -> None:
    view = prompt_view(
        [
            {"role": "system", "content": "S" * 1000},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "reply"},
            {"role": "user", "content": [{"type": "text", "text": "last"}, {"type": "image_url", "image_url": {}}]},
        ]
    )
    assert view.user == "last"
    assert view.embed_text == "S" * 300 + "\nlast"


def test_long_user_turns_keep_head_and_tail() -> None:
    text = "Summarize this. " + "x" * 5000 + " Translate the above."
    embedded = prompt_view([{"role": "user", "content": text}]).embed_text
    assert embedded.startswith("Summarize this.")
    assert embedded.endswith("Translate the above.")
    assert len(embedded) == HEAD_CHARS + TAIL_CHARS + 3


def test_structure_signals() -> None:
    mc = prompt_view([{"role": "user", "content": "Q?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:"}])
    values = dict(zip(STRUCTURE_NAMES, structure(mc), strict=True))
    assert values["has_options"] == 1.0
    assert values["ends_answer"] == 1.0
    assert all(0.0 <= v <= 1.0 for v in values.values())
