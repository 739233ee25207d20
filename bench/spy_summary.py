"""Summarise a py-spy ``--format raw`` profile (collapsed stacks): self and inclusive share per function.

    .venv/bin/py-spy record -r 1000 --format raw -o esme.raw -- .venv/bin/python bench/esme_clients.py ours ...
    .venv/bin/python bench/spy_summary.py esme.raw [--top 25]

Self: samples where the function is the innermost Python frame (time spent in it, or in C it called
directly, such as a socket write). Inclusive: samples where it is anywhere on the stack.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def _name(frame: str) -> str:
    m = _FRAME.match(frame)
    if m is None:
        return frame
    path = m.group("file")
    for marker in ("/work/main/", "site-packages/", "lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({path})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("raw", type=Path)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args(argv)
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in args.raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        frames = [_name(f) for f in stack.split(";") if not f.startswith("process ")]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    if not total:
        print("no samples", file=sys.stderr)
        return 1
    print(f"{total} samples\n\n{'self %':>7}  function")
    for f, c in own.most_common(args.top):
        print(f"{100 * c / total:6.1f}%  {f}")
    print(f"\n{'incl %':>7}  function")
    for f, c in incl.most_common(args.top):
        print(f"{100 * c / total:6.1f}%  {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
