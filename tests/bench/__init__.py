"""`make bench`: Genvault's performance benchmark against naive baselines.

`python -m tests.bench --scale S` seeds (or copies from a kept template) a reference data
set of 1M x S generations in its own PostgreSQL database, runs every measurement beside
its naive baseline, interleaved, and writes docs/performance.md. See docs/performance.md
for the method and the latest figures.
"""
