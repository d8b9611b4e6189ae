import os
import sys
from pathlib import Path

import pytest
import torch

# Triton reads TRITON_INTERPRET when it is first imported, and any test may
# import it first: without a GPU, the kernels run in the interpreter for the
# whole session (set before triton is imported anywhere).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

REPO = Path(__file__).resolve().parents[1]

# The local Slurm cluster and the dress rehearsal submitted to it: shared by test_slurm.py and test_rehearsal.py.
from slurm_cluster import cluster, slurm_run  # noqa: E402, F401


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture()
def cfg() -> dict:
    """A fresh copy of the embedded default config (config.yaml)."""
    import yaml

    return yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.fixture(scope="session")
def snakemake_bin() -> str:
    return str(Path(sys.executable).parent / "snakemake")


@pytest.fixture(scope="session")
def default_run(tmp_path_factory, repo, snakemake_bin) -> Path:
    """The reduced default workflow, run once for every test file that checks its outputs."""
    import yaml
    from workflow_run import reduced_config, smk

    work = tmp_path_factory.mktemp("workflow")
    (work / "config.yaml").write_text(yaml.safe_dump(reduced_config(repo)))
    smk(snakemake_bin, repo, work, "--cores", "2")
    return work


def compile_latex(tmp_path: Path, fragment: str) -> Path:
    """pdflatex a small document that \\input-s the fragment; skip (or fail in CI) without pdflatex."""
    import os
    import shutil
    import subprocess

    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        if os.environ.get("VICLIP_REQUIRE_LATEX") == "1":
            pytest.fail("pdflatex not on PATH but VICLIP_REQUIRE_LATEX=1")
        pytest.skip("pdflatex not on PATH")
    (tmp_path / "ablation.tex").write_text(fragment)
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\\usepackage{booktabs,graphicx}\\begin{document}\\input{ablation.tex}\\end{document}\n"
    )
    proc = subprocess.run(
        [pdflatex, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    pdf = tmp_path / "doc.pdf"
    assert pdf.exists() and pdf.stat().st_size > 0
    return pdf
