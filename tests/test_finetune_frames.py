"""Fine-tuning trains at the frame count it is evaluated at (the paper's 12 frames for retrieval).

The job is the real one (`run_job`) on test_finetune's benchmark files and
tiny 4-frame pretrained model, under the paper's fine-tuned protocol
(`finetuned_settings({})`): retrieval is evaluated at 12 frames, so its
temporal table is resized before training, by the official loader's rule.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from test_finetune import TINY, inputs, job, lines  # noqa: F401  (inputs: a fixture)

from viclip.eval.protocol import finetuned_settings
from viclip.model.checkpoints import TEMPORAL_KEY, with_frames
from viclip.model.factory import initial_model
from viclip.train.checkpoint import load_model
from viclip.train.distributed import Dist
from viclip.train.finetune import run_job

PAPER_FRAMES = 12


class Records(logging.Handler):
    """The viclip logger's messages (caplog is function-scoped; the job runs once per module)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def paper_job(inputs, tmp_path_factory):  # noqa: F811
    torch.set_num_threads(1)
    spec = job(inputs, tmp_path_factory.mktemp("paper"))
    spec["finetune"] = {**spec["finetune"], "evaluate": finetuned_settings({})}
    logger, handler = logging.getLogger("viclip"), Records()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        run_job(spec, Dist())
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return spec, handler.messages


def test_retrieval_trains_and_is_evaluated_at_the_papers_frames(paper_job):
    spec, messages = paper_job
    i = spec["tasks"].index("msrvtt")
    steps = [r for r in lines(spec["train_logs"][i]) if r["kind"] == "step"]
    assert steps and {r["frames"] for r in steps} == {PAPER_FRAMES}  # the clips fed to the model
    record = json.loads(Path(spec["records"][i]).read_text())
    s = record["settings"]
    assert s["frames"] == PAPER_FRAMES and s["input"] == "paper"
    assert s["training"]["frames"] == PAPER_FRAMES and s["training"]["precision"] == "fp32"
    assert s["training"]["fed"] == {"frames": PAPER_FRAMES, "text_length": 32}
    # MSR-VTT's 32 tokens exceed the tiny model's 8 positions: the table is extended, not the text cut
    assert s["text_length"] == s["text_length_requested"] == s["training"]["text_length"] == 32
    assert record["metrics"]["t2v_r1"] > 1 / record["details"]["n_candidates"]
    model, saved = load_model(spec["checkpoints"][i])  # a later load agrees with the table
    assert saved["config"]["num_frames"] == PAPER_FRAMES and saved["config"]["context_length"] == 32
    assert model.vision_encoder.temporal_positional_embedding.shape == (1, PAPER_FRAMES, TINY.vision_width)
    assert model.text_encoder.positional_embedding.shape == (32, TINY.text_width)
    resized = [m for m in messages if m.startswith("msrvtt: temporal table resized")]
    assert len(resized) == 1 and f"from {TINY.num_frames} to {PAPER_FRAMES} frames" in resized[0]


def test_classification_keeps_the_models_frames(paper_job):
    spec, messages = paper_job
    i = spec["tasks"].index("k400")
    steps = [r for r in lines(spec["train_logs"][i]) if r["kind"] == "step"]
    assert steps and {r["frames"] for r in steps} == {TINY.num_frames}
    record = json.loads(Path(spec["records"][i]).read_text())
    assert record["settings"]["frames"] == TINY.num_frames and record["settings"]["views"] == {"clips": 4, "crops": 3}
    assert record["settings"]["training"]["frames"] == TINY.num_frames
    saved = torch.load(spec["checkpoints"][i], map_location="cpu", weights_only=True)
    assert saved["config"]["num_frames"] == TINY.num_frames
    assert not any(m.startswith("k400: temporal table") for m in messages)


def test_an_unchanged_frame_count_leaves_the_model_as_it_is():
    model = initial_model(TINY, 0)
    with torch.no_grad():
        model.vision_encoder.temporal_positional_embedding.normal_()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    same, adapted = with_frames(model, TINY.num_frames)
    assert same is model and adapted is None
    after = same.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def hand_made(values: list[float], width: int) -> torch.Tensor:
    """[1, T, width]: column c holds values * (c + 1)."""
    return torch.tensor(values)[None, :, None] * torch.arange(1.0, width + 1)


def test_resizing_follows_the_official_loaders_rule():
    """Growing: linear, align_corners=False (frame i reads source (i + 0.5) * T / F - 0.5); shrinking: first F."""
    model = initial_model(TINY, 0)
    with torch.no_grad():
        model.vision_encoder.temporal_positional_embedding.copy_(hand_made([0, 1, 4, 9], TINY.vision_width))
    wide, adapted = with_frames(model, PAPER_FRAMES)
    assert adapted == {
        "from": [1, 4, TINY.vision_width],
        "to": [1, 12, TINY.vision_width],
        "rule": "linear (align_corners=False)",
    }
    assert wide.cfg.num_frames == PAPER_FRAMES and wide.vision_encoder.num_frames == PAPER_FRAMES
    expected = hand_made([0, 0, 1 / 3, 2 / 3, 1, 2, 3, 4, 17 / 3, 22 / 3, 9, 9], TINY.vision_width)
    torch.testing.assert_close(wide.vision_encoder.temporal_positional_embedding.detach(), expected)
    rest = {k: v for k, v in model.state_dict().items() if k != TEMPORAL_KEY}
    assert all(torch.equal(v, wide.state_dict()[k]) for k, v in rest.items())  # only the table changes
    narrow, adapted = with_frames(wide, 3)
    assert adapted["rule"] == "truncate"
    table = wide.vision_encoder.temporal_positional_embedding
    assert torch.equal(narrow.vision_encoder.temporal_positional_embedding, table[:, :3])
