"""`make demo` as a newcomer runs it (README, "See it live: `make demo`"): its own database,
the first agent's credentials boxed with the whole login address, and Ctrl-C stopping the
simulator, the server and the worker quietly, saying so. Real processes, through make."""

import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import WAIT_LIMIT, free_port

ROOT = Path(settings.BASE_DIR)


@pytest.fixture
def demo(tmp_path):
    if not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("make demo runs from the checkout's .venv (make .venv/.dev)")
    port = free_port()
    log = tmp_path / "demo.log"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MAKEFLAGS", "MFLAGS")},
        "PORT": str(port),
        "DEMO_PROVIDER_PORT": str(free_port()),
        "DEMO_GRAPH_PORT": str(free_port()),
        "DEMO_CONVERSATIONS": "40",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
    }
    process = subprocess.Popen(
        ["make", "--no-print-directory", "demo"],  # noqa: S607
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a terminal's process group: Ctrl-C reaches all of it
    )
    yield process, port, log
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_make_demo_boxes_the_login_and_stops_quietly_on_ctrl_c(demo):
    process, port, log = demo
    deadline = time.monotonic() + WAIT_LIMIT * 6
    while "POST /webhook/" not in log.read_text(errors="replace"):
        assert process.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.2)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
        assert answer.status == 200
    output = log.read_text(errors="replace")
    box = re.search(r"\+-+\+\n(\|.*\|\n)+\+-+\+", output)
    assert box, output
    assert f"http://127.0.0.1:{port}/accounts/login/" in box.group()
    assert re.search(r"\| +password +\S{12,}", box.group())

    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
    process.wait(WAIT_LIMIT * 3)
    output = log.read_text(errors="replace")
    assert "make demo: stopped the simulator, the server and the worker." in output
    for noise in ("CommandError", "Traceback", "Connection refused", "did not answer"):
        assert noise not in output, output[-3000:]
