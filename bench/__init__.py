"""Benchmarks: `make bench` (bench.run), cold start (bench.cold_start), a burst (bench.burst)."""
