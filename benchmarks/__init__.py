"""Benchmarks: each ``bench_<name>.py`` has a ``main()`` that prints its figures and ``BENCH`` lines."""
