"""`make bench [BENCH=<name>]`: run every benchmark (or one) and repeat the BENCH lines at the end."""

from __future__ import annotations

import contextlib
import importlib
import io
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


class _Tee(io.TextIOBase):
    def __init__(self, *streams: io.TextIOBase) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def main(argv: list[str]) -> int:
    names = argv or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {available()}", file=sys.stderr)
        return 2
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} cores={__import__('os').cpu_count()} "
        f"python={platform.python_version()}"
    )
    headlines: list[str] = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        captured = io.StringIO()
        started = time.perf_counter()
        with contextlib.redirect_stdout(_Tee(sys.stdout, captured)):  # type: ignore[arg-type]
            importlib.import_module(f"benchmarks.bench_{name}").main()
        print(f"({name} took {time.perf_counter() - started:.1f} s)")
        headlines += [line for line in captured.getvalue().splitlines() if line.startswith("BENCH ")]
    print("\n=== summary ===")
    print("\n".join(headlines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
