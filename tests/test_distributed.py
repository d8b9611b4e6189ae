"""Distributed pretraining on CPU: 2 gloo processes against one process on the same global batch.

The gathered contrastive loss and the gradients after DDP's averaging must
match the single-process ones (to float rounding), with and without cached
gradient accumulation; a whole short run under torchrun must end at the
weights and losses of the single-process run.
"""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from test_pretrain import CFG, TINY, train_cfg, write_toy_corpus

from viclip.model.factory import initial_model
from viclip.train import launch
from viclip.train.distributed import Dist, from_env, shutdown
from viclip.train.loop import train_step
from viclip.train.pretrain import Micro, PretrainTask, run_job
from viclip.train.sampling import accumulation, micro_positions

GLOBAL = 8
WORLD = 2
KEPT = 5  # of the 16 patch tokens of the tiny model


def global_batch(seed: int = 0):
    """A fixed global batch: videos, caption ids and kept-token indices."""
    g = torch.Generator().manual_seed(seed)
    video = torch.randn(GLOBAL, CFG.num_frames, 3, CFG.image_size, CFG.image_size, generator=g)
    ids = torch.randint(1, CFG.vocab_size - 2, (GLOBAL, CFG.context_length), generator=g)
    ids[:, -1] = CFG.vocab_size - 1
    n_tokens = CFG.num_frames * (CFG.image_size // CFG.patch_size) ** 2
    keep = torch.stack([torch.randperm(n_tokens, generator=g)[:KEPT].sort().values for _ in range(GLOBAL)])
    return video, ids, keep


def rows(batch, idx) -> Micro:
    video, ids, keep = batch
    return Micro((video[idx], ids[idx], keep[idx]))


def gradients(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def one_process(micro_idx: list[list[int]], cached: bool) -> tuple[float, dict]:
    """Loss and gradients of one process that sees every micro-batch."""
    model = initial_model(CFG, 0)
    task = PretrainTask(model, None, None, [], [], 0)
    batch = global_batch()
    loss = train_step(
        task.module, [rows(batch, i) for i in micro_idx], task, Dist(), torch.autocast("cpu", enabled=False), cached
    )
    return float(loss), gradients(model)


CASES = {  # name: (micro-batch per rank, cached accumulation)
    "whole": (4, True),
    "cached": (2, True),
    "micro": (2, False),
}


def _rank(rank: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    dist = from_env()
    results = {}
    try:
        for name, (micro, cached) in CASES.items():
            model = initial_model(CFG, 0)
            task = PretrainTask(model, None, None, [], [], 0)
            ddp = torch.nn.parallel.DistributedDataParallel(task.module)
            batch = global_batch()
            mbs = [rows(batch, torch.from_numpy(p)) for p in micro_positions(0, GLOBAL, WORLD, rank, micro)]
            loss = train_step(ddp, mbs, task, dist, torch.autocast("cpu", enabled=False), cached)
            total = dist.sum_(loss.reshape(1).clone()) / WORLD
            results[name] = (float(total), gradients(model))
    finally:
        shutdown(dist)
    torch.save(results, f"{out}.{rank}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("ranks") / "grads")
    import torch._dynamo  # noqa: F401  (DDP imports it: once here, not in each forked rank)

    mp.start_processes(_rank, args=(free_port(), out), nprocs=WORLD, join=True, start_method="fork")
    return [torch.load(f"{out}.{r}", weights_only=True) for r in range(WORLD)]


def assert_close_grads(a: dict, b: dict, tol: float = 1e-6) -> None:
    """Equal to `tol` relative to each gradient's largest entry (float sums in another order differ there)."""
    assert a.keys() == b.keys() and a
    for k in a:
        scale = max(1.0, a[k].abs().max().item())
        assert (a[k] - b[k]).abs().max().item() <= tol * scale, (k, (a[k] - b[k]).abs().max().item(), scale)


def test_rank_slices_tile_the_global_batch():
    assert accumulation(8, 2, 0) == (4, 1) and accumulation(8, 2, 2) == (2, 2) and accumulation(8, 2, 16) == (4, 1)
    got = [micro_positions(3, 8, 2, r, 2) for r in range(2)]
    assert [p.tolist() for p in got[0] + got[1]] == [[24, 25], [26, 27], [28, 29], [30, 31]]
    with pytest.raises(ValueError, match="not divisible by the 3 training processes"):
        accumulation(8, 3, 0)
    with pytest.raises(ValueError, match="micro_batch 3 does not divide the 4 clips per process"):
        accumulation(8, 2, 3)


def test_cached_accumulation_is_the_whole_batch_gradient():
    whole_loss, whole = one_process([list(range(8))], cached=True)
    cached_loss, cached = one_process([[0, 1, 2], [3, 4, 5], [6, 7]], cached=True)
    assert cached_loss == pytest.approx(whole_loss, abs=1e-6)
    assert_close_grads(whole, cached)
    # plain accumulation is a different objective: fewer negatives per softmax
    plain_loss, plain = one_process([[0, 1, 2, 3], [4, 5, 6, 7]], cached=False)
    assert plain_loss < whole_loss
    assert not torch.allclose(plain["temp"], whole["temp"], atol=1e-5)


@pytest.mark.parametrize("case", ["whole", "cached"])
def test_two_ranks_match_one_process(two_ranks, case):
    loss, grads = one_process([list(range(GLOBAL))], cached=True)
    for rank_loss, rank_grads in (r[case] for r in two_ranks):
        assert rank_loss == pytest.approx(loss, abs=1e-6)
        assert_close_grads(grads, rank_grads)  # DDP leaves every rank the averaged gradient


def test_two_ranks_with_micro_negatives_match_their_objective(two_ranks):
    # micro-step i softmaxes over micro-batch i of both ranks: global positions {0,1,4,5}, then {2,3,6,7}
    loss, grads = one_process([[0, 1, 4, 5], [2, 3, 6, 7]], cached=False)
    for rank_loss, rank_grads in (r["micro"] for r in two_ranks):
        assert rank_loss == pytest.approx(loss, abs=1e-6)
        assert_close_grads(grads, rank_grads)


@pytest.mark.slow  # ~30 s here: torchrun and two ranks each import torch and DDP's torch._dynamo
def test_torchrun_two_processes_train_like_one(tmp_path):
    files = write_toy_corpus(tmp_path / "corpus", n=32)
    spec = dict(
        model=TINY,
        train=train_cfg(epochs=2, tune_epochs=0.5),
        mask_ratio=0.5,
        seed=3,
        threads=1,
        **files,
        execution={"nproc": 2, "log_every": 2},
    )
    one, two = tmp_path / "one", tmp_path / "two"
    torch.set_num_threads(1)
    run_job({**spec, "out_dir": str(one), "log_path": str(one / "log.jsonl")}, Dist())
    job = launch.job_spec(tmp_path / "job.json", **spec, out_dir=str(two), log_path=str(two / "log.jsonl"))
    with open(tmp_path / "torchrun.log", "w") as out:
        rc = launch.run(launch.torchrun_command(job, 2, run_job.__module__), out)
    assert rc == 0, (tmp_path / "torchrun.log").read_text()[-3000:]
    a = torch.load(one / "checkpoint.pt", weights_only=True)
    b = torch.load(two / "checkpoint.pt", weights_only=True)
    assert b["summary"]["processes"] == 2
    for k in a["model"]:
        x, y = a["model"][k], b["model"][k]
        if k.endswith("attn.in_proj_bias"):
            # The key bias shifts every score of a query equally, so its true gradient is 0 and Adam
            # normalises rounding noise into full-size steps: it differs by ~lr between any two runs.
            w = x.shape[0] // 3
            x, y = torch.cat([x[:w], x[2 * w :]]), torch.cat([y[:w], y[2 * w :]])
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5, msg=k)
    lines = [[json.loads(x) for x in (d / "log.jsonl").read_text().splitlines()] for d in (one, two)]
    assert [(r["kind"], r["stage"], r["epoch"]) for r in lines[0]] == [
        (r["kind"], r["stage"], r["epoch"]) for r in lines[1]
    ]
    np.testing.assert_allclose([r["loss"] for r in lines[0]], [r["loss"] for r in lines[1]], rtol=1e-5)
    assert not (two / "resume").exists()
