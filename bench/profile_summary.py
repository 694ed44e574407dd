"""The top lines of a py-spy profile: where the server's samples go, by function.

py-spy's raw format is one line per distinct stack, `frame;frame;...;frame count`, root first.
A function's inclusive share is the samples of the stacks it is on (counted once per stack,
so recursion does not count twice); its own share, those where it is the innermost frame.

    python -m bench.profile_summary bench/results/profile-webhook-sqlite.txt
"""

import sys
from collections import Counter
from pathlib import Path


def summarize(raw: str, top: int = 40, prefix: str = "inbox/") -> str:
    """Total samples, then the `top` functions by own time, then ours (`prefix`) inclusive."""
    inclusive: Counter = Counter()
    own: Counter = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] += samples
        own[frames[-1]] += samples
    if not total:
        return "no samples\n"

    def lines(counter: Counter, keep=lambda frame: True) -> list[str]:
        chosen = [(f, n) for f, n in counter.most_common() if keep(f)][:top]
        return [f"{100 * n / total:5.1f}%  {frame}" for frame, n in chosen]

    out = [f"{total} samples", "", "own time (innermost frame):", *lines(own)]
    out += ["", f"inclusive, {prefix} only:", *lines(inclusive, lambda f: prefix in f)]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(summarize(Path(sys.argv[1]).read_text()), end="")
