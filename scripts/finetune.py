"""Fine-tune one pretrained run on its task(s) and score each test split (rule finetune)."""

from viclip.runtime import device, setup_job

log = setup_job(snakemake.log[0], snakemake.threads)

from viclip.data.benchmarks.load import load_benchmark  # noqa: E402
from viclip.eval.records import make_record  # noqa: E402
from viclip.io import atomic_json, atomic_torch  # noqa: E402
from viclip.model.tokenizer import tokenizer_for  # noqa: E402
from viclip.train.checkpoint import load_model  # noqa: E402
from viclip.train.finetune import finetune  # noqa: E402

w, p, out = snakemake.wildcards, snakemake.params, snakemake.output
plan = p.plan
for task, bench_dir, ckpt_path, log_path, record_path in zip(plan["tasks"], plan["bench_dirs"], out.checkpoint,
                                                            out.train_log, out.record):
    model, _ = load_model(snakemake.input.checkpoint)  # every task starts from the pretrained weights
    model.to(device())
    tokenizer = tokenizer_for(model.cfg)
    bench = load_benchmark(bench_dir, model.cfg.num_frames, model.cfg.image_size, p.train["augment"], p.train["flip"])
    with open(log_path, "w") as train_log:
        module, metrics, details = finetune(model, tokenizer, bench, p.finetune, p.seed, train_log)
    atomic_torch({"model": module.cpu().state_dict(), "config": model.cfg.to_dict(), "task": task}, ckpt_path)
    atomic_json(make_record(w.arm, int(w.seed), bench, "finetuned", metrics, details, checkpoint=ckpt_path), record_path)
    log.info("%s fine-tuned: %s", task, {k: round(v, 4) for k, v in metrics.items()})
