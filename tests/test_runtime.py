"""Per-job set-up: glibc keeps freed memory for reuse (viclip.runtime.keep_freed_memory)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's"
)

# A fresh interpreter, so the test process's own allocator is left alone: after the
# set-up (or not), malloc one 4 MiB block and print how many blocks glibc mapped for it
# (mallinfo2's hblks), then the MALLOC_ variables a child process would inherit.
CHILD = """
import ctypes, os, sys
from viclip.runtime import keep_freed_memory

class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
applied = keep_freed_memory() if sys.argv[1] == "keep" else None
before = libc.mallinfo2().hblks
block = libc.malloc(4 << 20)
print(applied, libc.mallinfo2().hblks - before, os.environ.get("MALLOC_MMAP_THRESHOLD_"), os.environ.get("MALLOC_TRIM_THRESHOLD_"))
"""


def child(mode: str, **env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_blocks_up_to_32_mib_come_from_the_heap_and_children_inherit_it():
    assert child("plain") == ["None", "1", "None", "None"]  # glibc's default maps a fresh 4 MiB block
    assert child("keep") == ["True", "0", str(32 << 20), str(1 << 30)]


def test_a_setting_the_user_exported_wins():
    applied, mapped, mmap, trim = child("keep", MALLOC_MMAP_THRESHOLD_="131072")
    assert (applied, mapped, mmap, trim) == ("False", "1", "131072", "None")
