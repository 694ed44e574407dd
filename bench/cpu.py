"""CPU accounting from /proc (Linux): how busy the server processes and the machine were.

On a shared or small machine this tells whether the server or the machine ran out of CPU.
"""

import os
import time
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _process_seconds(pid: int) -> float:
    # Fields 14 and 15 of /proc/<pid>/stat (after the parenthesised name): utime, stime.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass
class CpuMeter:
    """Started before a run and read after it; `read()` gives shares over the wall time."""

    pids: list[int]

    def __post_init__(self) -> None:
        self.started = time.perf_counter()
        self.process_start = sum(_process_seconds(pid) for pid in self.pids)
        self.machine_start = _machine_ticks()

    def read(self) -> dict:
        wall = time.perf_counter() - self.started
        process = sum(_process_seconds(pid) for pid in self.pids) - self.process_start
        busy, total = (b - a for a, b in zip(self.machine_start, _machine_ticks(), strict=True))
        return {
            # In cores: 1.0 is one core busy all along.
            "server_cpu": process / wall if wall else 0.0,
            "machine_busy": busy / total if total else 0.0,
        }
