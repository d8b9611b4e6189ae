"""A library edit reruns exactly the jobs whose scripts run the edited code (viclip/codehash.py).

Dry runs on the finished reduced default run, from a copy of the checkout
whose library is edited: a code edit plans the jobs of the rules that import
the module and what reads their outputs; a comment or docstring edit plans
nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from workflow_run import planned_jobs, smk

from viclip.codehash import closure, code_digest

CODE = ("Snakefile", "rules", "scripts", "viclip", "configs", "envs", "report")


@pytest.fixture()
def checkout(tmp_path, repo) -> Path:
    """A copy of the checkout's code, to edit."""
    for name in CODE:
        src = repo / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, tmp_path / name)
    return tmp_path


def planned_rules(snakemake_bin, checkout, workdir) -> set[str]:
    out = smk(snakemake_bin, checkout, workdir, "-n").stdout
    return {rule for rule, _ in planned_jobs(out)}


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("viclip/train/loop.py", {"pretrain", "evaluate_zeroshot", "finetune_run", "report", "all"}),
        ("viclip/report/table.py", {"report", "all"}),
        (
            "viclip/captions/fused.py",
            {"fuse", "gather_captions", "pretrain", "evaluate_zeroshot", "finetune_run", "report", "all"},
        ),
    ],
)
def test_a_code_edit_plans_exactly_the_dependent_jobs(default_run, snakemake_bin, checkout, module, expected):
    append(checkout / module, "\n_EDITED_BY_TEST = 1\n")
    assert planned_rules(snakemake_bin, checkout, default_run) == expected


def test_comment_docstring_and_format_edits_plan_nothing(default_run, snakemake_bin, checkout):
    path = checkout / "viclip/train/loop.py"
    text = path.read_text()
    first_def = text.index('    """', text.index("\ndef ")) + len('    """')
    text = text[:first_def] + "Reworded. " + text[first_def:]  # a function's docstring
    path.write_text(text + "\n# a comment\n\n\n")
    out = smk(snakemake_bin, checkout, default_run, "-n").stdout
    assert "Nothing to be done" in out, out[-3000:]


def test_digest_ignores_docstrings_but_not_code(tmp_path):
    pkg = tmp_path / "viclip"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text('"""Doc."""\n\n\ndef f():\n    """Doc."""\n    return 1  # one\n')
    (pkg / "b.py").write_text("X = 2\n")
    script = tmp_path / "s.py"
    script.write_text("from viclip.a import f\nimport json\n")
    assert closure(tmp_path, script) == ["viclip", "viclip.a"]  # b is not imported, json is not ours
    before = code_digest(tmp_path, script)
    (pkg / "a.py").write_text('"""Other doc."""\n\n\ndef f():\n    # reworded\n    return 1\n')
    assert code_digest(tmp_path, script) == before
    (pkg / "a.py").write_text("def f():\n    return 2\n")
    assert code_digest(tmp_path, script) != before
