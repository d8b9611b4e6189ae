"""Every Snakemake process (each dry run, and each job step on a cluster) imports what rules/common.smk imports.

Those modules must stay light: scipy.stats, torch or pandas there cost each such
start 0.5-2 s, which a Slurm run of a few hundred jobs pays once per job. The
same holds for jobs that never run a model, such as decoding the synthetic clips.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("scipy", "torch", "pandas", "matplotlib", "transformers", "open_clip")


def loaded(modules: list[str], heavy=HEAVY) -> list[str]:
    """The `heavy` libraries that importing `modules` loads, in a fresh interpreter."""
    code = (
        "import json, sys\n"
        f"for m in {modules!r}: __import__(m)\n"
        f"print(json.dumps([h for h in {heavy!r} if h in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_the_workflow_imports_no_heavy_library():
    modules = re.findall(r"^from (viclip[\w.]*) import", (REPO / "rules/common.smk").read_text(), re.M)
    assert len(modules) >= 5, modules
    assert loaded(modules) == []


def test_decoding_clips_into_a_cache_imports_no_torch():
    modules = re.findall(r"^from (viclip[\w.]*) import", (REPO / "scripts/decode_frames.py").read_text(), re.M)
    assert "viclip.data.cache" in modules
    assert loaded(modules, ("torch",)) == []
