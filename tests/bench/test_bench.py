"""The bench's statistics and report: they compute what they claim, and never crash on gaps."""

import pytest

from bench import report
from bench.inbox_scale import _filter_missing
from bench.stats import percentile, rate, ratio, summarize


def test_percentile_interpolates_between_ranks():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([4, 1, 3, 2], 50) == 2.5  # order of the input does not matter
    assert percentile([10, 20, 30, 40, 50], 25) == 20
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)
    assert percentile([7], 99) == 7
    assert percentile([3, 1, 2], 0) == 1
    assert percentile([3, 1, 2], 100) == 3


def test_percentile_refuses_nonsense():
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1], 101)


def test_summarize():
    summary = summarize([5.0, 1.0, 3.0])
    assert summary == {
        "n": 3,
        "mean": 3.0,
        "p50": 3.0,
        "p95": 4.8,
        "p99": pytest.approx(4.96),
        "max": 5.0,
    }
    assert summarize([]) == {"n": 0}


def test_rate_and_ratio():
    assert rate(300, 10.0) == 30.0
    assert rate(5, 0) == 0.0
    assert ratio(70, 100) == 0.7
    assert ratio(70, 0) is None


def test_a_filter_that_is_ignored_is_detected():
    html = (
        '<li id="conversation-6a41b347-8d80-4ce9-84ba-7af66f369f6a" data-status="OPEN"></li>'
        '<li id="conversation-7a41b347-8d80-4ce9-84ba-7af66f369f6a" data-status="CLOSED"></li>'
    )
    assert "not available" in _filter_missing("OPEN")(html)
    assert _filter_missing("OPEN")(html.replace("CLOSED", "OPEN")) is None


def test_the_report_shows_gaps_instead_of_crashing():
    results = {
        "machine": {"cpu": "test cpu", "cores": 2},
        "ingestion": {
            "clients": 4,
            "seconds": 1,
            "runs": [
                {
                    "label": "SQLite, 1 process",
                    "ratio": 0.5,
                    "healthz": {"requests_per_s": 200.0},
                    "webhook": {
                        "requests_per_s": 100.0,
                        "p50_ms": 10.0,
                        "p99_ms": 20.0,
                        "errors": 0,
                        "accepted": 100,
                        "stored": 100,
                        "client_cpu": 0.1,
                    },
                },
                {"label": "PostgreSQL, 1 process", "error": "RuntimeError: no server"},
            ],
        },
        "sockets": {
            "live_push": {"trials": [], "note": "not available in this build: HTTP 500"},
            "memory": {"idle_rss_mb": 80.0, "note": "sockets not available in this build"},
        },
        "scale": {"sqlite": {"error": "CalledProcessError: boom"}},
    }
    table = report.markdown(results)
    assert (
        "| SQLite, 1 process | 200 | 100 | 50% | 10.0 / 20.0 | 0 | 100 | 100 | - / 0.10, - |"
        in table
    )
    assert "_failed: RuntimeError: no server_" in table
    assert "not available in this build: HTTP 500" in table
    assert "80.0 MiB" in table
    assert "**sqlite**: _failed: CalledProcessError: boom_" in table


def test_readme_block_is_replaced_between_its_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_START}\nold\n{report.README_END}\nafter\n")
    assert report.readme_update(readme, "NEW TABLE", ["bench/results/inbox.png"])
    text = readme.read_text()
    assert "old" not in text and "NEW TABLE" in text and "![inbox](bench/results/inbox.png)" in text
    assert text.startswith("intro\n") and text.endswith("after\n")
    other = tmp_path / "OTHER.md"
    other.write_text("no markers")
    assert not report.readme_update(other, "x", [])
