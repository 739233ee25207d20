"""gateway/_hugeheap.c and gateway.runtime.use_huge_pages: pymalloc's arenas on transparent huge pages.

The allocator changes the whole process for good, so each check that installs it runs in a child
interpreter of its own and reports what it saw as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from gateway import _hugeheap
from gateway.runtime import HugeHeap, huge_page_stats, thp_mode, use_huge_pages

ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20


def in_child(code: str, **env: str) -> Any:
    """Run ``code`` in a fresh interpreter (the project on its path); what it prints last, as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


# a helper every child below defines: the smaps entry of the range the allocator reserved
SMAPS = """
import json, re
from gateway import _hugeheap

def advised(base):
    # the VmFlags of the mapping that starts at base ('hg': MADV_HUGEPAGE was applied)
    start = None
    for line in open('/proc/self/smaps'):
        header = re.match('([0-9a-f]+)-[0-9a-f]+ ', line)
        if header:
            start = int(header.group(1), 16)
        elif start == base and line.startswith('VmFlags:'):
            return line.split()[1:]
    return None
"""


def test_arenas_come_from_the_advised_range_and_objects_live_there() -> None:
    seen = in_child(
        SMAPS
        + """
reserved = _hugeheap.install(1 << 30, 64 << 20)
before = _hugeheap.stats()
kept = [[i, str(i)] for i in range(300_000)]  # some 40 MB of small objects: new arenas
after = _hugeheap.stats()
base, end = after['base'], after['base'] + after['carved']
inside = sum(base <= id(item) < end for item in kept)
print(json.dumps({'reserved': reserved, 'before': before, 'after': after, 'inside': inside,
                  'flags': advised(base), 'again': _hugeheap.install(1 << 30, 0),
                  'intact': sum(int(s) - i for i, s in kept)}))
"""
    )
    assert seen["reserved"] == 1 << 30
    after = seen["after"]
    assert after["installed"] == 1 and after["reserved"] == 1 << 30
    assert after["base"] % (2 * MIB) == 0  # huge-page aligned
    assert after["in_use"] - seen["before"]["in_use"] >= 30  # 1 MiB arenas for the 40 MB
    assert after["carved"] == after["peak"] * MIB
    # nearly every new object is in the range: the rest filled the free room of arenas made before
    assert seen["inside"] >= 290_000
    assert "hg" in seen["flags"]  # the kernel has the advice
    assert seen["again"] == 0  # once per process
    assert seen["intact"] == 0


def test_freed_arenas_are_reused_and_blocks_beyond_the_hold_go_back_whole() -> None:
    seen = in_child(
        SMAPS
        + """
_hugeheap.install(1 << 30, 8 << 20)
first = [[i] for i in range(1_000_000)]  # some 100 MB
grown = _hugeheap.stats()
del first
freed = _hugeheap.stats()
again = [(i, i + 1) for i in range(1_000_000)]
reused = _hugeheap.stats()
print(json.dumps({'grown': grown, 'freed': freed, 'reused': reused,
                  'sum': sum(b - a for a, b in again)}))
"""
    )
    grown, freed, reused = seen["grown"], seen["freed"], seen["reused"]
    assert grown["in_use"] >= 80 and grown["free"] == 0
    # the arenas went back to the allocator: at most the hold stays resident, the rest was released
    # in whole 2 MiB blocks
    assert freed["in_use"] < 10
    assert freed["free"] == freed["peak"] - freed["in_use"]
    assert freed["resident_free"] <= 8 * MIB + 2 * MIB
    assert 0 <= freed["resident_free"] <= freed["free"] * MIB  # counted from the free arenas only
    assert freed["released_blocks"] >= (freed["free"] * MIB - 10 * MIB) // (2 * MIB)
    # the second burst takes the freed arenas back before carving new ones
    assert reused["reused"] >= min(freed["free"], reused["in_use"] - freed["in_use"])
    assert reused["carved"] <= grown["carved"] + 16 * MIB
    assert reused["other_allocs"] == 0
    assert seen["sum"] == 1_000_000


def test_arenas_made_before_the_install_are_freed_by_their_own_allocator() -> None:
    seen = in_child(
        """
import json
from gateway import _hugeheap
early = [[i] for i in range(300_000)]  # arenas from pymalloc's own mmap
_hugeheap.install(64 << 20, 0)
del early  # their arenas go back through the allocator installed before
late = [[i] for i in range(1_000_000)]  # more than the 64 MiB range: the rest from the old allocator
stats = _hugeheap.stats()
base, end = stats['base'], stats['base'] + stats['reserved']
outside = sum(not base <= id(item) < end for item in late)
del late
print(json.dumps({'stats': stats, 'outside': outside, 'after': _hugeheap.stats()}))
"""
    )
    stats = seen["stats"]
    assert stats["reserved"] == 64 * MIB
    assert stats["carved"] == 64 * MIB  # used up
    assert stats["other_allocs"] > 0 and seen["outside"] > 0
    assert stats["other_frees"] > 0  # the early arenas
    assert seen["after"]["other_frees"] > stats["other_frees"]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        _hugeheap.install(MIB, 0)
    with pytest.raises(ValueError, match="not negative"):
        _hugeheap.install(1 << 30, -1)
    with pytest.raises(TypeError):
        _hugeheap.install(1 << 30)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("always [madvise] never\n", "madvise"),
        ("[always] madvise never\n", "always"),
        ("always madvise [never]\n", "never"),
        ("garbage\n", "unknown"),
    ],
)
def test_thp_mode_reads_the_bracketed_setting(tmp_path: Path, text: str, mode: str) -> None:
    setting = tmp_path / "enabled"
    setting.write_text(text)
    assert thp_mode(setting) == mode


def test_thp_mode_of_a_missing_setting_is_unknown(tmp_path: Path) -> None:
    assert thp_mode(tmp_path / "absent") == "unknown"


def test_use_huge_pages_is_off_by_the_environment_or_the_kernel(tmp_path: Path) -> None:
    setting = tmp_path / "enabled"
    setting.write_text("always madvise [never]\n")
    assert use_huge_pages(environ={"TGW_HUGE_PAGES": "0"}, setting=setting) == HugeHeap(
        0, "never", "TGW_HUGE_PAGES is off"
    )
    off = use_huge_pages(environ={}, setting=setting)
    assert not off.installed and "never" in off.reason
    assert huge_page_stats() is None  # neither installed anything in this process


def test_use_huge_pages_installs_once() -> None:
    seen = in_child(
        """
import json
from gateway.runtime import huge_page_stats, use_huge_pages
first = use_huge_pages(reserve=1 << 30, setting=__import__('pathlib').Path('/dev/null'))
second = use_huge_pages(reserve=4 << 30)
print(json.dumps({'first': [first.reserved, first.mode, first.reason], 'second': second.reserved,
                  'stats': huge_page_stats()}))
"""
    )
    assert seen["first"] == [1 << 30, "unknown", ""]  # a kernel setting it cannot read does not stop it
    assert seen["second"] == 1 << 30  # the range of the first call stands
    assert seen["stats"]["installed"] == 1 and seen["stats"]["hold"] == 128 * MIB
