"""Benchmarks (`make bench` / `python -m benchmarks`): every `bench_*.py` module's `main()` prints its figures."""
