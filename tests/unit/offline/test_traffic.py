"""Traffic lines: requests with their text and decision records mix; a bad line is reported by number."""

from __future__ import annotations

from pathlib import Path

import orjson

from router.offline.traffic import read_traffic


def test_requests_and_decision_records_are_read_and_bad_lines_are_named(tmp_path: Path) -> None:
    lines = [
        {"id": "a", "messages": [{"role": "user", "content": "Translate 'hello' to German."}], "tenant": "acme"},
        {
            "object": "router.decision",
            "request_id": "req-1",
            "model": "auto",
            "tenant": "beta",
            "headers": {"X-Tier": "gold"},
            "features": {"prompt_tokens": 120, "has_tools": True, "has_images": False, "stream": True},
            "task": "coding",
            "confidence": 0.9,
            "complexity": 0.7,
            "usage": {"input_tokens": 118, "output_tokens": 300},
        },
        {"request_id": "req-2", "features": {"prompt_tokens": -1}},
        {"request_id": "req-3", "features": {"prompt_tokens": 5}, "task": "coding", "confidence": 1.5},
        {"messages": []},
        {"id": "b"},
        ["not", "an", "object"],
    ]
    path = tmp_path / "traffic.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(x) for x in lines) + b"\n{broken\n\n")
    t = read_traffic(path)
    text, record = t.requests
    assert (text.id, text.tenant, text.model, text.recorded) == ("a", "acme", "auto", None)
    assert text.chat is not None
    assert text.chat.parsed.messages[0].role == "user"
    assert (record.id, record.chat, record.output_tokens, record.headers) == ("req-1", None, 300, {"x-tier": "gold"})
    assert record.recorded is not None
    f = record.recorded
    assert (f.tenant, f.prompt_tokens, f.has_tools, f.stream) == ("beta", 120, True, True)
    assert (f.task, f.task_confidence, f.complexity, f.last_user_message) == ("coding", 0.9, 0.7, "")
    assert t.with_text == 1
    assert [p.split(": ", 1)[0] for p in t.problems] == [f"{path}:{n}" for n in (3, 4, 5, 6, 7, 8)]
    assert "prompt_tokens" in t.problems[0]
    assert "`confidence` must be a number from 0 to 1" in t.problems[1]
    assert "missing `id`" in t.problems[2]
    assert "nothing to route on" in t.problems[3]
    assert "not valid JSON" in t.problems[5]
