"""Classification at serving time: the trained head, or a policy's custom task when a request is close
enough to its examples' centroid."""

from __future__ import annotations

import numpy as np
import pytest

from router.classifier.labels import TASKS
from router.classifier.model import Heads
from router.classifier.predict import CustomTasks, classify
from router.classifier.text import prompt_view
from tests.unit.classifier.test_model import unit


def test_a_custom_task_overrides_the_head_above_its_threshold() -> None:
    heads = Heads.load()
    centroid = unit(1)
    custom = CustomTasks(("triage",), centroid, np.array([0.8], dtype=np.float32))
    views = [prompt_view([{"role": "user", "content": "t"}])] * 2
    near = centroid[0] * 0.95 + unit(1)[0] * 0.05
    near /= np.linalg.norm(near)
    out = classify(heads, np.stack([near, unit(1)[0]]).astype(np.float32), views, custom)
    assert (out[0].task, out[0].source) == ("triage", "custom")
    assert out[0].confidence >= 0.8
    assert out[1].source == "head"
    assert out[1].task in TASKS
    assert [label for label, _ in out[1].top][-1] == "triage"  # custom similarities are listed after the head's


def test_build_averages_examples_into_a_unit_centroid() -> None:
    vectors = unit(3)
    built = CustomTasks.build({"t": (["a", "b", "c"], 0.7)}, lambda texts: vectors[: len(texts)])
    assert built.names == ("t",)
    assert np.linalg.norm(built.centroids[0]) == pytest.approx(1, abs=1e-5)
    assert CustomTasks.build({}, lambda texts: vectors).names == ()


def test_heads_fitted_on_another_encoder_are_refused_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tuned layers change every embedding: a heads file from another encoder must not serve quietly."""
    from dataclasses import replace

    from router.classifier.predict import ClassifierModel

    shipped = Heads.load()
    monkeypatch.setattr(
        Heads, "load", classmethod(lambda cls: replace(shipped, meta={**shipped.meta, "encoder": "0ther"}))
    )
    with pytest.raises(ValueError, match=r"fitted on encoder 0ther, but the encoder loaded is \w+; retrain"):
        ClassifierModel.load()
