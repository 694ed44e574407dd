"""Tools for developers and the benchmarks, not for agents: the simulator (`manage.py
simulate`, the demo's traffic) and the seeder (`manage.py seed`, scale data).

devtools imports inbox, never the other way round (tests/test_boundaries.py): the domain
must run, and be reasoned about, without them.
"""
