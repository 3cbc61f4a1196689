"""`make bench`: run every benchmark (or those named: `make bench BENCH_ARGS="render"`), print figures and ratios."""

import importlib
import sys
import time

BENCHMARKS = [
    "render",
    "claim",
    "review",
    "import",
    "scan",
    "quality",
    "precision",
    "export",
    "s3",
    "load",
    "attacks",
    "drafts",
    "preferences",
    "tools",
    "preflight",
    "overrides",
]


def main(argv: list[str]) -> int:
    # `python -m benchmarks [NAME ...] [--options]`: the options (from the first "-" on) go to each benchmark.
    first_option = next((i for i, arg in enumerate(argv) if arg.startswith("-")), len(argv))
    names, options = argv[:first_option] or BENCHMARKS, argv[first_option:]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    for name in names:
        print(f"== {name}")
        started = time.perf_counter()
        module = importlib.import_module(f"benchmarks.bench_{name}")
        module.run(options) if options else module.run()
        print(f"   ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
