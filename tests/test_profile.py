"""The Slurm profile (profiles/slurm/) parses, installs, and plans the workflow.

A dry run with the profile needs no Slurm: Snakemake parses the profile
(YTE templating included), validates every `slurm-*` option against the
installed executor plugin (an unknown one fails with "unrecognized
arguments") and evaluates the resources, but never starts the slurm executor,
so sbatch and squeue need not be on PATH. Real submissions are tested on a
local cluster in test_slurm.py.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

GPU_RULES = ("evaluate_zeroshot",)  # pretrain and finetune size themselves from their `execution` blocks


@pytest.fixture(scope="module")
def profile_dir(repo):
    return repo / "profiles" / "slurm"


@pytest.fixture(scope="module")
def profile(profile_dir) -> dict:
    """The profile as Snakemake reads it (after YTE), with no VICLIP_SLURM_* set."""
    import yte

    env = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("VICLIP_SLURM_")}
    try:
        with open(profile_dir / "profile.yaml") as f:
            return yte.process_yaml(f, require_use_yte=True)
    finally:
        os.environ.update(env)


def test_profile_keys(profile):
    assert profile["executor"] == "slurm"
    assert int(profile["jobs"]) >= 1
    assert profile["retries"] >= 1  # resubmit cancelled / timed-out / failed jobs
    assert profile["slurm-requeue"] is True  # preempted jobs go back to the queue
    assert profile["slurm-status-command"] == "squeue"  # sacct hangs the plugin without slurmdbd
    assert profile["slurm-keep-successful-logs"] is True
    assert "rerun-triggers" not in profile  # params changes must rerun jobs
    assert "cores" not in profile
    assert {"runtime", "mem_mb", "cpus_per_task"} <= set(profile["default-resources"])
    # Unset VICLIP_SLURM_*: no partition, account, QoS or constraint, so the cluster's defaults apply.
    site = {"slurm_partition", "slurm_account", "qos", "constraint", "slurm_extra"}
    assert not site & set(profile["default-resources"])


def test_site_settings_come_from_the_environment(profile_dir, monkeypatch):
    import yte

    env = {
        "PARTITION": ("slurm_partition", "gpu"),
        "ACCOUNT": ("slurm_account", "proj42"),
        "QOS": ("qos", "normal"),
        "CONSTRAINT": ("constraint", "a100|h100"),
        "EXTRA": ("slurm_extra", "--mail-type=FAIL"),
    }
    for var, (_, value) in env.items():
        monkeypatch.setenv(f"VICLIP_SLURM_{var}", value)
    with open(profile_dir / "profile.yaml") as f:
        res = yte.process_yaml(f, require_use_yte=True)["default-resources"]
    # Quoted, so Snakemake evaluates each to a string, not a Python name.
    assert {key: res[key] for key, _ in env.values()} == {key: repr(value) for key, value in env.values()}


def test_gpu_rules_sized_in_the_profile_pretrain_by_the_config(profile):
    res, threads = profile["set-resources"], profile["set-threads"]
    assert "pretrain" not in res and "pretrain" not in threads
    for rule in GPU_RULES:
        assert res[rule]["gpu"] == 1, rule
        for key in ("cpus_per_task", "mem_mb", "runtime"):
            assert key in res[rule], (rule, key)
        assert threads[rule] == res[rule]["cpus_per_task"], rule


def test_profile_names_only_existing_rules(profile, repo):
    rules = set(re.findall(r"^\s*rule (\w+):", "".join(p.read_text() for p in (repo / "rules").glob("*.smk")), re.M))
    named = set(profile["set-resources"]) | set(profile["set-threads"])
    assert named <= rules, named - rules


def run_install(repo, xdg, *args):
    env = {**os.environ, "XDG_CONFIG_HOME": str(xdg)}
    return subprocess.run(
        ["bash", str(repo / "profiles/slurm/install.sh"), *args], env=env, capture_output=True, text=True, timeout=30
    )


def test_install_links_the_profile_once(tmp_path, repo, profile_dir):
    dest = tmp_path / "snakemake/slurm"
    first = run_install(repo, tmp_path)
    assert first.returncode == 0, first.stderr
    assert dest.is_symlink() and dest.resolve() == profile_dir.resolve()
    again = run_install(repo, tmp_path)
    assert again.returncode == 0 and "already links" in again.stdout


def test_install_keeps_a_users_own_profile(tmp_path, repo, profile_dir):
    dest = tmp_path / "snakemake/slurm"
    dest.mkdir(parents=True)
    (dest / "config.yaml").write_text("executor: slurm\n")
    refused = run_install(repo, tmp_path)
    assert refused.returncode != 0 and "--force" in refused.stderr
    assert (dest / "config.yaml").exists() and not dest.is_symlink()
    forced = run_install(repo, tmp_path, "--force")
    assert forced.returncode == 0, forced.stderr
    assert dest.resolve() == profile_dir.resolve()
    backups = list(tmp_path.glob("snakemake/slurm.bak.*"))
    assert len(backups) == 1 and (backups[0] / "config.yaml").exists()


def test_dry_run_as_typed_from_the_repo_root(tmp_path, repo, snakemake_bin):
    """`snakemake --cores all --profile slurm` after the set-up step, in a copy of the repository root."""
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("Snakefile", "config.yaml"):
        shutil.copy2(repo / name, clone / name)
    for name in ("rules", "scripts", "configs", "profiles", "report"):
        if (repo / name).exists():
            shutil.copytree(repo / name, clone / name, ignore=shutil.ignore_patterns("__pycache__"))
    xdg = tmp_path / "xdg"
    assert run_install(clone, xdg).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VICLIP_SLURM_", "SNAKEMAKE_PROFILE"))}
    env.update(XDG_CONFIG_HOME=str(xdg), VICLIP_SLURM_PARTITION="gpu")
    cmd = [snakemake_bin, "--cores", "all", "--profile", "slurm", "-n"]
    proc = subprocess.run(cmd, cwd=clone, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{out[-4000:]}"
    assert "Using profile slurm" in out and "This was a dry-run" in out

    # Each job's block lists "rule <name>:" and later its "resources: ..." line.
    resources: dict[str, list[str]] = {}
    rule = None
    for line in out.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):", line.strip())
        if m:
            rule = m.group(1)
        elif rule and line.strip().startswith("resources:"):
            resources.setdefault(rule, []).append(line)
            rule = None
    for gpu_rule in GPU_RULES:
        assert resources.get(gpu_rule), f"no {gpu_rule} job planned"
        assert all("gpu=1" in r for r in resources[gpu_rule]), gpu_rule
    # pretrain and finetune: the embedded default trains on the CPU (execution.gpus: 0)
    # (finetune's jobs may come from a derived rule, e.g. finetune_run for `finetune.jobs: per_run`)
    for rule in ("pretrain", "finetune"):
        cfg = yaml.safe_load((repo / "config.yaml").read_text())[rule].get("execution", {})
        jobs = [r for name, rs in resources.items() if name == rule or name.startswith(f"{rule}_") for r in rs]
        assert jobs, f"no {rule} job planned"
        assert all(f"gpu={cfg.get('gpus', 0)}" in r for r in jobs), rule
        assert all(f"runtime={cfg.get('runtime_min', 120)}" in r for r in jobs), rule
    # CPU rules keep their own resources and get no GPU; every job gets the partition.
    assert resources.get("decode_corpus") and all("gpu=" not in r for r in resources["decode_corpus"])
    assert all("slurm_partition=gpu" in r for rs in resources.values() for r in rs)


# ---------------------------------------------------------------------------
# Every Slurm example the profile and the docs show, run through the pinned
# snakemake-executor-plugin-slurm: Snakemake parses the profile (or the
# example) exactly as for a run, evaluates the resources, and the plugin's own
# code builds the sbatch call (validate_slurm_extra, get_submit_command,
# set_gres_string, Executor.get_account_arg / get_partition_arg). Nothing is
# submitted, so no Slurm is needed. The examples are found in the files, not
# listed here, so one added to the docs is checked too.

DOC_FILES = ("profiles/slurm/profile.yaml", "profiles/slurm/*.md", "README.md", "docs/*.md")
REPO = Path(__file__).resolve().parents[1]
EXAMPLE_RULE = "example_rule"  # the rule a resource example is set for
DEFAULTS_ONLY = "any_rule"  # a rule the profile's set-resources does not name


@dataclass(frozen=True)
class Example:
    where: str  # path:line
    kind: str  # "env" (VICLIP_SLURM_X=value), "resource" (a job resource), "option" (a profile key)
    key: str
    value: Any
    # How a resource value is written: "yaml" (a profile entry, key: value),
    # "cli" (--set-resources RULE:KEY=VALUE), "plain" (the value itself, e.g. "slurm_extra (e.g. `--x`)").
    form: str = "yaml"


ENV_RE = re.compile(r"\b(VICLIP_SLURM_\w+)=(\"[^\"]*\"|'[^']*'|[^\s`'\"]+)")
EXTRA_RE = re.compile(r"\bslurm_extra:[ \t]*(\"[^\"\n]*\"|'[^'\n]*'|[^\s`]+)")
EG_RE = re.compile(
    r"\b(VICLIP_SLURM_\w+|slurm_extra)\b`?(?:(?!VICLIP_SLURM_|slurm_extra)[^.;]){0,60}?\be\.g\.,?\s+`([^`]+)`"
)
KV_RE = re.compile(r"^\s*([A-Za-z_][\w-]*):\s+\S")
SPAN_RE = re.compile(r"`([^`]+)`")
RESOURCE_OPTIONS = {"default-resources": False, "set-resources": True}  # option -> nested by rule


def _snakemake_options() -> set[str]:
    from snakemake.cli import get_argument_parser

    return {o[2:] for o in get_argument_parser()._option_string_actions if o.startswith("--")}


def _blocks(path: str, text: str):
    """(first line, "prose" | "code", language, text) of each paragraph and code block.

    Markdown: paragraphs and fenced blocks. profile.yaml: its comments, where
    a line indented by 4 or more spaces after "#" is commented-out code.
    """
    blocks, buf, start, fence = [], [], 1, None

    def flush(kind, lang=""):
        if buf:
            blocks.append((start, kind, lang, "\n".join(buf)))
        buf.clear()

    if path.endswith(".yaml"):
        kind = None
        for n, line in enumerate(text.splitlines(), 1):
            m = re.match(r"\s*#(.*)$", line)
            body = m.group(1) if m else ""
            this = None if not m or not body.strip() else ("code" if body.startswith("    ") else "prose")
            if this != kind:
                flush(kind, "yaml")
                kind, start = this, n
            if this:
                buf.append(body[1:] if this == "prose" else body)
        flush(kind, "yaml")
        return blocks
    for n, line in enumerate(text.splitlines(), 1):
        if fence is not None:
            if line.strip().startswith("```"):
                flush("code", fence)
                fence = None
            else:
                buf.append(line)
        elif line.strip().startswith("```"):
            flush("prose")
            fence, start = line.strip()[3:].strip(), n + 1
        elif not line.strip():
            flush("prose")
        else:
            if re.match(r"\s*([-*]|\d+\.)\s", line):  # a list item starts a block of its own
                flush("prose")
            if not buf:
                start = n
            buf.append(line)
    flush("code" if fence is not None else "prose", fence or "")
    return blocks


def _key_value(where: str, text: str, options: set[str], in_resources: bool = False) -> list[Example]:
    """`key: value` as a profile would hold it: a Snakemake/plugin option, or a job resource."""
    if not KV_RE.match(text):
        return []
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as err:
        return [Example(where, "resource", text.split(":")[0].strip(), err, "broken")]
    (key, value), *_ = loaded.items()
    if value is None or isinstance(value, dict):
        return []
    if key in RESOURCE_OPTIONS:
        return []
    is_option = not in_resources and (key in options or key.startswith("slurm-"))
    return [Example(where, "option" if is_option else "resource", key, value)]


def _cli_resources(where: str, text: str) -> list[Example]:
    """--set-resources RULE:KEY=VALUE ... / --default-resources KEY=VALUE ... on a command line."""
    try:
        tokens = shlex.split(text, comments=True)
    except ValueError:
        return []
    found, option = [], None
    for token in tokens:
        flag, eq, rest = token.partition("=")
        if flag.lstrip("-") in RESOURCE_OPTIONS and token.startswith("--"):
            option = flag.lstrip("-")
            if not eq:
                continue
            token = rest
        elif token.startswith("-"):
            option = None
            continue
        if option and "=" in token:
            assign = token.split(":", 1)[1] if RESOURCE_OPTIONS[option] and ":" in token.split("=")[0] else token
            key, value = assign.split("=", 1)
            found.append(Example(where, "resource", key, value, "cli"))
    return found


def find_examples(files: dict[str, str]) -> list[Example]:
    """Every Slurm example in the given {path: text}: env settings, resources, profile options."""
    options = _snakemake_options()
    found: list[Example] = []
    for path, text in files.items():
        slurm_file = path.startswith("profiles/slurm/")

        # Anywhere, in any form: VICLIP_SLURM_X=value, slurm_extra: value, "X (e.g. `value`)";
        # in profile.yaml only in its comments (its own entries are checked as the profile).
        prose = text
        if path.endswith(".yaml"):
            prose = "\n".join(line if line.lstrip().startswith("#") else "" for line in text.splitlines())

        def line_of(offset, prose=prose):
            return prose.count("\n", 0, offset) + 1

        for m in ENV_RE.finditer(prose):
            found.append(Example(f"{path}:{line_of(m.start())}", "env", m.group(1), shlex.split(m.group(2))[0]))
        for m in EXTRA_RE.finditer(prose):
            found += _key_value(f"{path}:{line_of(m.start())}", m.group(0), options, in_resources=True)
        for m in EG_RE.finditer(prose):
            where, value = f"{path}:{line_of(m.start())}", m.group(2)
            if m.group(1) == "slurm_extra":
                found.append(Example(where, "resource", "slurm_extra", value, "plain"))
            else:
                found.append(Example(where, "env", m.group(1), value))
        # In Slurm context: `key: value` in prose and code, profile-shaped YAML, command lines.
        previous = ""  # a code block belongs to the paragraph before it
        for start, kind, lang, block in _blocks(path, text):
            context = slurm_file or re.search(r"slurm|profile", block + (previous if kind == "code" else ""), re.I)
            previous = block if kind == "prose" else previous
            if not context:
                continue
            spans = SPAN_RE.finditer(block) if kind == "prose" else re.finditer(r"[^\n]+", block)
            for m in spans:
                where = f"{path}:{start + block.count(chr(10), 0, m.start())}"
                piece = m.group(1) if kind == "prose" else m.group(0)
                found += _cli_resources(where, piece)
                if kind == "prose" or path.endswith(".yaml"):
                    found += _key_value(where, piece, options)
            if kind == "code" and lang in ("yaml", "yml") and not path.endswith(".yaml"):
                found += _yaml_block(f"{path}:{start}", textwrap.dedent(block), options)
    unique: dict[tuple, Example] = {}  # one of each per file
    for ex in found:
        unique.setdefault((ex.where.rsplit(":", 1)[0], ex.kind, ex.key, repr(ex.value), ex.form), ex)
    return list(unique.values())


def _yaml_block(where: str, block: str, options: set[str]) -> list[Example]:
    try:
        doc = yaml.safe_load(block)
    except yaml.YAMLError as err:
        return [Example(where, "resource", "<yaml block>", err, "broken")]
    if not isinstance(doc, dict):
        return []
    found = []
    for key, value in doc.items():
        if key in RESOURCE_OPTIONS and isinstance(value, dict):
            entries = value.values() if RESOURCE_OPTIONS[key] else [value]
            for entry in entries:
                for name, val in (entry or {}).items():
                    found.append(Example(where, "resource", name, val))
        elif key in options or str(key).startswith("slurm-"):
            found.append(Example(where, "option", key, value))
    return found


def doc_files() -> dict[str, str]:
    paths = sorted({p for pattern in DOC_FILES for p in REPO.glob(pattern)})
    return {str(p.relative_to(REPO)): p.read_text() for p in paths}


EXAMPLES = find_examples(doc_files())


def examples(kind: str):
    return pytest.mark.parametrize(
        "ex", [e for e in EXAMPLES if e.kind == kind], ids=lambda e: f"{e.where}:{e.key}={e.value}"
    )


# --- Snakemake's parsing of a profile, and the plugin's sbatch call for a job ---


def snakemake_args(profile_dir: Path, *argv: str):
    """The command-line namespace of `snakemake --profile DIR ARGV...` (no workflow is loaded)."""
    from snakemake.cli import parse_args

    try:
        return parse_args(["--profile", str(profile_dir), "--workflow-profile", "none", "--cores", "1", *argv])[1]
    except SystemExit as err:  # argparse: an unknown option or a bad value
        pytest.fail(f"snakemake rejects the profile {profile_dir} {argv}: exit {err.code} (see stderr)")


def plugin_settings(args):
    """The plugin's ExecutorSettings from the slurm-* options, as Snakemake builds them."""
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    return ExecutorPluginRegistry().get_plugin("slurm").get_settings(args)


def job_resources(args, rule: str, **override) -> dict:
    """The evaluated resources of a job of `rule`: default-resources, then set-resources, then override."""
    from snakemake.common import async_run
    from snakemake.iocontainers import InputFiles, Wildcards
    from snakemake.resources import Resources

    threads = (args.set_threads or {}).get(rule)
    threads = threads.value if threads is not None else 1
    res = Resources()
    res.update(args.default_resources or Resources())
    res.update((args.set_resources or {}).get(rule, Resources()))

    def evaluate(r):
        kw = dict(wildcards=Wildcards(), input=InputFiles(), attempt=1, threads=threads, rulename=rule)
        return r.evaluate(**kw, async_run=async_run)

    values = dict(res.expand_items(constraints={}, evaluate=evaluate))
    return {**values, **override, "_cores": threads}


@pytest.fixture
def sbatch(monkeypatch):
    """Build the plugin's sbatch call for a job with the given resources, as Executor.run_job does.

    The job is the part of a Snakemake job the plugin reads (name, resources,
    threads). The account check asks sacctmgr on a live cluster, so here it
    accepts any account; everything else is the plugin's own code.
    """
    import snakemake_executor_plugin_slurm as plugin
    from snakemake.iocontainers import ResourceList
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string
    from snakemake_executor_plugin_slurm.validation import validate_slurm_extra

    monkeypatch.setattr(plugin, "validate_account", lambda account, logger: account)

    def build(rule: str, resources: dict, settings) -> str:
        job = SimpleNamespace(
            name=rule,
            resources=ResourceList(fromdict=resources),
            threads=resources["_cores"],
            wildcards={},
            is_group=lambda: False,
        )
        validate_slurm_extra(job)
        executor = SimpleNamespace(
            _fallback_account_arg="", _partitions=None, _fallback_partition="", logger=logging.getLogger(__name__)
        )
        params = {
            "run_uuid": "run-uuid",
            "slurm_logfile": f".snakemake/slurm_logs/rule_{rule}/%j.log",
            "comment_str": f"rule_{rule}",
            "account": next(plugin.Executor.get_account_arg(executor, job)),
            "partition": plugin.Executor.get_partition_arg(executor, job),
            "workdir": "/work",
        }
        return get_submit_command(job, params, settings=settings) + set_gres_string(job)

    return build


@pytest.fixture
def clean_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith(("VICLIP_SLURM_", "SNAKEMAKE_PROFILE")):
            monkeypatch.delenv(key)
    return monkeypatch


def profile_with(tmp_path: Path, profile_dir: Path, **changes) -> Path:
    """A copy of the profile as Snakemake reads it (YTE applied), with top-level keys changed."""
    import yte

    with open(profile_dir / "profile.yaml") as f:
        prof = yte.process_yaml(f, require_use_yte=True)
    prof.update(changes)
    out = tmp_path / "profile"
    out.mkdir(exist_ok=True)
    (out / "profile.yaml").write_text(yaml.safe_dump(prof, sort_keys=False))
    return out


def check_env_example(ex: Example, profile_dir: Path, env, sbatch) -> None:
    """The profile reads the variable into a resource that reaches the sbatch call, which the plugin accepts."""
    args = snakemake_args(profile_dir)
    without = sbatch(DEFAULTS_ONLY, job_resources(args, DEFAULTS_ONLY), plugin_settings(args))
    env.setenv(ex.key, ex.value)
    args = snakemake_args(profile_dir)
    settings = plugin_settings(args)
    calls = {rule: sbatch(rule, job_resources(args, rule), settings) for rule in [DEFAULTS_ONLY, *args.set_resources]}
    for rule, call in calls.items():
        shown = ex.value in call or shlex.quote(ex.value) in call
        assert shown, f"{ex.where}: the profile does not pass {ex.key} on to the {rule} job: {call}"
    assert calls[DEFAULTS_ONLY] != without


def check_resource_example(ex: Example, profile_dir: Path, tmp_path: Path, sbatch) -> None:
    """Snakemake evaluates the resource as written; the plugin accepts it and builds sbatch flags from it."""
    from snakemake.resources import SizedResources

    assert ex.form != "broken", f"{ex.where}: not valid YAML: {ex.value}"
    if ex.form == "yaml":
        prof = profile_with(tmp_path, profile_dir, **{"set-resources": {EXAMPLE_RULE: {ex.key: ex.value}}})
        args = snakemake_args(prof)
    elif ex.form == "cli":
        args = snakemake_args(profile_dir, "--set-resources", f"{EXAMPLE_RULE}:{ex.key}={ex.value}")
    else:
        args = snakemake_args(profile_dir)
    resources = job_resources(args, EXAMPLE_RULE, **({ex.key: ex.value} if ex.form == "plain" else {}))
    settings = plugin_settings(args)
    call = sbatch(EXAMPLE_RULE, resources, settings)
    # The plugin reads the resource: another value gives another sbatch call.
    name = re.sub(r"_(mb|mib)$", "", ex.key)
    name = f"{name}_mb" if name in SizedResources else ex.key
    assert name in resources, f"{ex.where}: Snakemake dropped resource {ex.key}: {resources}"
    value = resources[name]
    other = value + 1 if isinstance(value, int) and not isinstance(value, bool) else f"x{value}"
    changed = sbatch(EXAMPLE_RULE, {**resources, name: other}, settings)
    assert changed != call, f"{ex.where}: the plugin does not read resource {ex.key!r} (sbatch call: {call})"


@examples("env")
def test_env_example_reaches_sbatch_and_passes_the_plugin(ex, profile_dir, clean_env, sbatch):
    check_env_example(ex, profile_dir, clean_env, sbatch)


@examples("resource")
def test_resource_example_is_read_and_accepted_by_the_plugin(ex, profile_dir, tmp_path, clean_env, sbatch):
    check_resource_example(ex, profile_dir, tmp_path, sbatch)


@examples("option")
def test_option_example_is_an_option_of_snakemake_or_the_plugin(ex, profile_dir, tmp_path, clean_env, sbatch):
    args = snakemake_args(profile_with(tmp_path, profile_dir, **{ex.key: ex.value}))
    settings = plugin_settings(args)  # ExecutorSettings validates its fields
    for rule in [DEFAULTS_ONLY, *(args.set_resources or {})]:
        sbatch(rule, job_resources(args, rule), settings)


def test_docs_show_qos_constraint_and_extra_the_plugins_way():
    """Examples of each site setting are found (and so checked above), through its own resource."""
    shown = {(e.kind, e.key) for e in EXAMPLES}
    for var, resource in [("QOS", "qos"), ("CONSTRAINT", "constraint"), ("EXTRA", "slurm_extra")]:
        assert ("env", f"VICLIP_SLURM_{var}") in shown, var
        assert ("resource", resource) in shown, resource
    sources = {e.where.rsplit(":", 1)[0] for e in EXAMPLES}
    assert {"profiles/slurm/profile.yaml", "profiles/slurm/README.md"} <= sources


def test_every_documented_variable_at_once(profile_dir, clean_env, sbatch):
    """The profile with every VICLIP_SLURM_* the docs show: qos and constraint become --qos and -C."""
    env = {e.key: e.value for e in reversed(EXAMPLES) if e.kind == "env"}
    env.update(VICLIP_SLURM_QOS="normal", VICLIP_SLURM_CONSTRAINT="a100|h100")
    for key, value in env.items():
        clean_env.setenv(key, value)
    args = snakemake_args(profile_dir)
    settings = plugin_settings(args)
    assert settings.requeue and settings.status_command == "squeue"
    for rule in [DEFAULTS_ONLY, *args.set_resources]:
        call = sbatch(rule, job_resources(args, rule), settings)
        assert " --qos=normal" in call and " -C 'a100|h100'" in call, call
        assert env["VICLIP_SLURM_EXTRA"] in call, call


# What the profile and its README used to show (the plugin rejects both), and
# the same mistake in the other forms a doc may use: the checks above must find
# and fail every one.
REJECTED = {
    "profiles/slurm/profile.yaml": """\
# Extra sbatch flags for every job: VICLIP_SLURM_EXTRA="--qos=normal".
# Rule-specific sbatch flags: slurm_extra: "'--constraint=ampere'" (inner quotes
# needed; it replaces VICLIP_SLURM_EXTRA for that rule).
""",
    "profiles/slurm/README.md": """\
- Partition, account, extra flags: `VICLIP_SLURM_PARTITION`,
  `VICLIP_SLURM_ACCOUNT`, `VICLIP_SLURM_EXTRA` (e.g. `--qos=normal`) in the
  environment of the `snakemake` command.
""",
    "docs/SLURM.md": """\
Per rule, in the Slurm profile:

```yaml
set-resources:
  pretrain:
    slurm_extra: "'--qos=long -C a100'"
```

or `--set-resources "pretrain:slurm_extra='--constraint=a100'"` on the command line.
""",
}


def test_the_old_examples_are_found_and_rejected_by_the_plugin(profile_dir, tmp_path, clean_env, sbatch):
    from snakemake_interface_common.exceptions import WorkflowError

    old = find_examples(REJECTED)
    shown = {(e.kind, e.key, e.value, e.form) for e in old}
    assert shown >= {
        ("env", "VICLIP_SLURM_EXTRA", "--qos=normal", "yaml"),
        ("resource", "slurm_extra", "'--constraint=ampere'", "yaml"),
        ("resource", "slurm_extra", "'--qos=long -C a100'", "yaml"),
        ("resource", "slurm_extra", "'--constraint=a100'", "cli"),
    }, shown
    assert ("env", "VICLIP_SLURM_PARTITION", "--qos=normal", "yaml") not in shown
    for ex in old:
        if ex.key in ("VICLIP_SLURM_EXTRA", "slurm_extra"):
            with pytest.raises(WorkflowError, match="not allowed in the 'slurm_extra'"):
                if ex.kind == "env":
                    check_env_example(ex, profile_dir, clean_env, sbatch)
                else:
                    check_resource_example(ex, profile_dir, tmp_path, sbatch)


def test_a_resource_the_plugin_does_not_read_is_caught(profile_dir, tmp_path, clean_env, sbatch):
    """`reservation` is only a plugin option (slurm-reservation), not a resource: the example check fails."""
    ex = Example("-", "resource", "reservation", "paper")
    with pytest.raises(AssertionError, match="does not read resource 'reservation'"):
        check_resource_example(ex, profile_dir, tmp_path, sbatch)
