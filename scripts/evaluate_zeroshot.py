"""Zero-shot evaluation of one pretrained run on every zero-shot benchmark (rule evaluate_zeroshot)."""

from viclip.runtime import device, setup_job

log = setup_job(snakemake.log[0], snakemake.threads)

from viclip.eval.records import make_record  # noqa: E402
from viclip.eval.zeroshot import evaluate_zero_shot  # noqa: E402
from viclip.data.benchmarks.load import load_benchmark  # noqa: E402
from viclip.io import atomic_json  # noqa: E402
from viclip.model.tokenizer import tokenizer_for  # noqa: E402
from viclip.model.factory import initial_model  # noqa: E402
from viclip.model.wise_ft import interpolate  # noqa: E402
from viclip.train.checkpoint import load_model  # noqa: E402

w = snakemake.wildcards
model, _ = load_model(snakemake.input.checkpoint)
alpha = snakemake.params.wise_ft_alpha
if alpha < 1.0:
    init = initial_model(model.cfg, snakemake.params.seed).state_dict()
    model.load_state_dict(interpolate(init, model.state_dict(), alpha))
    log.info("WiSE-FT: evaluating %.2f x trained + %.2f x init", alpha, 1 - alpha)
model.to(device())
tokenizer = tokenizer_for(model.cfg)
for bench_dir, out in zip(snakemake.params.bench_dirs, snakemake.output):
    bench = load_benchmark(bench_dir, model.cfg.num_frames, model.cfg.image_size)
    metrics, details = evaluate_zero_shot(model, tokenizer, bench, snakemake.params.ensemble)
    details["wise_ft_alpha"] = alpha
    atomic_json(make_record(w.arm, int(w.seed), bench, "zeroshot", metrics, details), out)
    log.info("%s: %s", bench.name, {k: round(v, 4) for k, v in metrics.items()})
