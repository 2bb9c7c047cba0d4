from __future__ import annotations

from router.classifier.text import (
    EMBED_HEAD,
    EMBED_TAIL,
    HEAD_CHARS,
    STRUCTURE_NAMES,
    TAIL_CHARS,
    prompt_view,
    structure,
)


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
    assert view.text == "S" * 300 + "\nlast"
    assert view.embed_text == "S" * 80 + "\nlast"


def test_long_user_turns_keep_head_and_tail() -> None:
    text = "Summarize this. " + "x" * 5000 + " Translate the above."
    view = prompt_view([{"role": "user", "content": text}])
    for cut, (head, tail) in ((view.text, (HEAD_CHARS, TAIL_CHARS)), (view.embed_text, (EMBED_HEAD, EMBED_TAIL))):
        assert cut.startswith("Summarize this.")
        assert cut.endswith("Translate the above.")
        assert len(cut) == head + tail + 3


def test_structure_signals() -> None:
    mc = prompt_view([{"role": "user", "content": "Q?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:"}])
    values = dict(zip(STRUCTURE_NAMES, structure(mc), strict=True))
    assert values["has_options"] == 1.0
    assert values["ends_answer"] == 1.0
    assert all(0.0 <= v <= 1.0 for v in values.values())


def test_word_problem_signals() -> None:
    problem = "A shirt costs $12.50. Ann buys 3 shirts and pays 10% tax. How much does she pay?"
    values = dict(zip(STRUCTURE_NAMES, structure(prompt_view([{"role": "user", "content": problem}])), strict=True))
    assert values["has_money"] == values["has_percent"] == values["has_decimal"] == 1.0
    assert values["distinct_numbers"] == 3 / 12
    assert 0.0 < values["log_max_number"] < 1.0
    assert 0.0 < values["words_per_sentence"] < 1.0
    huge = structure(prompt_view([{"role": "user", "content": "9" * 500}]))  # overflows a float: still bounded
    assert all(0.0 <= v <= 1.0 for v in huge)
    empty = structure(prompt_view([{"role": "user", "content": ""}]))
    assert all(0.0 <= v <= 1.0 for v in empty)
