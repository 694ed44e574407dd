"""`make bench`: the benchmark suite. Run it with `python -m bench.run` (see the README)."""
