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


def test_view_takes_the_system_head_the_last_user_turn_and_the_one_before_as_context() -> None:
    view = prompt_view(
        [
            {"role": "system", "content": "S" * 1000},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "reply"},
            {"role": "user", "content": [{"type": "text", "text": "last"}, {"type": "image_url", "image_url": {}}]},
        ]
    )
    assert view.user == "last"
    assert view.context == "first"  # the user turn before, not the assistant's answer
    assert view.text == "S" * 300 + "\nlast\n« first »"
    assert view.embed_text == "S" * 80 + "\nlast\n« first »"


def test_single_turn_requests_have_no_context() -> None:
    view = prompt_view([{"role": "system", "content": "S"}, {"role": "user", "content": "only"}])
    assert view.context == ""
    assert view.embed_text == "S\nonly"


def test_a_follow_up_is_read_beside_the_turn_it_follows() -> None:
    """'another one' means nothing alone; beside the first turn it is a limerick request."""
    view = prompt_view(
        [
            {"role": "user", "content": "Write a limerick about a cat. " + "x" * 1000},
            {"role": "assistant", "content": "There once was a cat..."},
            {"role": "user", "content": "another one"},
        ]
    )
    assert view.embed_text.startswith("another one\n« Write a limerick about a cat.")
    assert len(view.context) == 300  # only its head
    assert structure(view)[STRUCTURE_NAMES.index("has_passage")] == 1.0  # a document pasted earlier counts


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
