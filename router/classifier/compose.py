"""``router data compose``: expand the hand-written pieces in ``data/authoring/`` into labelled rows.

Every piece (an instruction, a material, a template and its slot values) was written by hand for this
project; this module only combines them, deterministically (a seeded RNG), into the shapes real traffic
takes: the instruction before or after a pasted document, the instruction as the system prompt with the
document as the user turn, the document in an earlier turn and the instruction in the last, terse
lower-case requests with typos, instructions in other languages, and follow-ups whose task only the
conversation tells ("another one", "now in French"). Each row's ``task`` names its instruction or
template, so grouped validation (``router eval --group-by task``) never tests on an instruction it trained
on. See ``data/README.md``.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from router.classifier.labels import TASKS

AUTHORING = Path(__file__).parent / "data" / "authoring"
SOURCE = "authored-composed"
PER_INSTRUCTION = 8
PER_FOREIGN = 5
PER_TEMPLATE = 9
LANGS = ("French", "German", "Spanish", "Italian", "Portuguese", "Japanese", "Dutch", "Polish", "Korean", "Turkish")
TO_ENGLISH = ("English", "inglés", "Englische", "anglais", "inglês", "inglese", "英")
SYSTEMS = (
    "You are a helpful assistant.",
    "You are Ava, the assistant of Northwind Bank. Be concise and polite.",
    "You are an AI assistant inside a company wiki. Answer in Markdown.",
    "Always answer in the user's language.",
    "You are a friendly support bot for a travel agency.",
)
SMALL_TALK = (
    ("hi there", "Hello! How can I help you today?"),
    ("are you there?", "Yes, I'm here. What do you need?"),
    ("thanks for the help earlier", "You're welcome! Anything else?"),
    ("I have another request", "Sure, go ahead."),
)
# Follow-ups after an open-label exchange: (text, label); None keeps the conversation's label, so only
# the conversation tells what the answer must do.
FOLLOW_UPS = (
    ("another one please", None),
    ("can you give me more?", None),
    ("go on", None),
    ("and a different version?", None),
    ("Translate your answer into {lang}.", "translation"),
    ("now in {lang} please", "translation"),
    ("Make that shorter and more formal.", "rewriting"),
    ("rewrite it so a child can understand", "rewriting"),
    ("Summarize what you just said in one sentence.", "summarization"),
    ("tl;dr of the above?", "summarization"),
)


@dataclass(frozen=True)
class Material:
    id: str
    kind: str
    text: str
    lang: str
    ask: tuple[str, ...]
    pull: tuple[str, ...]
    classes: tuple[str, ...]


def _load(name: str) -> Any:
    with (AUTHORING / name).open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def materials() -> list[Material]:
    return [
        Material(
            id=m["id"],
            kind=m["kind"],
            text=m["text"].strip(),
            lang=m.get("lang", "English"),
            ask=tuple(m["ask"]),
            pull=tuple(m["pull"]),
            classes=tuple(m["classes"]),
        )
        for m in _load("materials.yaml")
    ]


def typos(text: str, rng: random.Random) -> str:
    """A hurried writer: lower case, no final full stop, two letters swapped or dropped here and there."""
    words = text.lower().rstrip(".").split(" ")
    for i, w in enumerate(words):
        if len(w) > 4 and rng.random() < 0.15:
            j = rng.randrange(1, len(w) - 2)
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :] if rng.random() < 0.5 else w[:j] + w[j + 1 :]
    return " ".join(words)


def _fill(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


def _narrow_values(m: Material, rng: random.Random) -> dict[str, str]:
    return {
        "kind": m.kind,
        "q": rng.choice(m.ask),
        "p": rng.choice(m.pull),
        "classes": ", ".join(m.classes),
        "lang": rng.choice([lang for lang in LANGS if lang != m.lang]),
        "n": str(rng.choice((2, 3, 5))),
    }


def _shape(instruction: str, text: str, rng: random.Random) -> list[dict[str, str]]:
    """One of the ways an instruction and its material arrive."""
    shape = rng.randrange(7)
    if shape == 0:
        return [{"role": "user", "content": f"{instruction}\n\n{text}"}]
    if shape == 1:
        return [{"role": "user", "content": f"{text}\n\n{instruction}"}]
    if shape == 2:
        return [{"role": "system", "content": instruction}, {"role": "user", "content": text}]
    if shape == 3:
        return [{"role": "user", "content": f'{instruction}\n"""\n{text}\n"""'}]
    if shape == 4:  # the material first, the task in the last turn
        return [
            {"role": "user", "content": f"Here is a document:\n{text}"},
            {"role": "assistant", "content": "Got it. What would you like me to do with it?"},
            {"role": "user", "content": instruction},
        ]
    if shape == 5:
        return [
            {"role": "system", "content": rng.choice(SYSTEMS)},
            {"role": "user", "content": f"{typos(instruction, rng)}: {text}"},
        ]
    said, reply = rng.choice(SMALL_TALK)
    return [
        {"role": "user", "content": said},
        {"role": "assistant", "content": reply},
        {"role": "user", "content": f"{instruction}\n{text}"},
    ]


def _pick_material(label: str, instruction: str, pool: list[Material], rng: random.Random) -> Material:
    if label == "translation" and any(w in instruction for w in TO_ENGLISH):
        foreign = [m for m in pool if m.lang != "English"]
        return rng.choice(foreign)
    return rng.choice(pool)


def _narrow(label: str, instructions: list[str], per: int, tag: str, rng: random.Random) -> Iterator[dict[str, Any]]:
    pool = materials()
    for i, instruction in enumerate(instructions):
        for _ in range(per):
            m = _pick_material(label, instruction, pool, rng)
            filled = _fill(instruction, _narrow_values(m, rng))
            yield {"messages": _shape(filled, m.text, rng), "label": label, "task": f"{tag}:{label}:{i:02d}"}


def _numbers(rng: random.Random) -> dict[str, str]:
    return {"a": str(rng.randint(2, 12)), "b": str(rng.randint(3, 40)), "c": str(rng.randint(20, 400))}


def _open_messages(text: str, label: str, rng: random.Random) -> tuple[list[dict[str, str]], str]:
    shape = rng.randrange(6)
    if shape == 0:
        return [{"role": "system", "content": rng.choice(SYSTEMS)}, {"role": "user", "content": text}], label
    if shape == 1:
        return [{"role": "user", "content": typos(text, rng)}], label
    if shape == 2:  # a follow-up: only the conversation tells the task
        follow, new = rng.choice(FOLLOW_UPS)
        turns = [
            {"role": "user", "content": text},
            {"role": "assistant", "content": "Here you go: (answer)"},
            {"role": "user", "content": _fill(follow, {"lang": rng.choice(LANGS)})},
        ]
        return turns, new or label
    return [{"role": "user", "content": text}], label


def _open(label: str, spec: dict[str, Any], rng: random.Random) -> Iterator[dict[str, Any]]:
    slots: dict[str, list[str]] = spec.get("slots") or {}
    for i, template in enumerate(spec["templates"]):
        seen: set[str] = set()
        for _ in range(PER_TEMPLATE * 3):
            values = {name: rng.choice(options) for name, options in slots.items()}
            if "name" in slots:
                values["name2"] = rng.choice([n for n in slots["name"] if n != values["name"]])
            text = _fill(template, {**_numbers(rng), **values})
            if text in seen:
                continue
            seen.add(text)
            messages, row_label = _open_messages(text, label, rng)
            yield {"messages": messages, "label": row_label, "task": f"composed:{label}:{i:02d}"}
            if len(seen) >= PER_TEMPLATE:
                break


def compose(seed: int = 2026) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    narrow = _load("narrow.yaml")
    foreign = narrow.pop("foreign")
    rows: list[dict[str, Any]] = []
    for label, instructions in narrow.items():
        rows += _narrow(label, instructions, PER_INSTRUCTION, "composed", rng)
        rows += _narrow(label, foreign[label], PER_FOREIGN, "composed-foreign", rng)
    for label, spec in _load("open.yaml").items():
        rows += _open(label, spec, rng)
    out = []
    for n, row in enumerate(rows):
        if row["label"] not in TASKS:
            raise ValueError(f"composed row {n}: unknown label {row['label']!r}")
        out.append({"id": f"{SOURCE}-{n:05d}", **row, "source": SOURCE, "license": "Apache-2.0"})
    return out


def write(path: Path, seed: int = 2026) -> int:
    rows = compose(seed)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)
