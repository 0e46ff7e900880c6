"""Throughput of `entities.normalize.normalize_item` on a generated Apollo sample.

    .venv/bin/python bench/normalize.py [--rows N] [--repeat R] [--profile]

Rows are generated in memory (`entities.apollo_sample.write_csv`, companies = rows / 5) and
mapped exactly as an upload maps them; only the `normalize_item` calls are timed. The caches
of the normalizers (`entities.normalize`, `.domains`, `.linkedin`) are cleared before each run,
so every run starts cold like a fresh worker.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import pstats
import time
from typing import NamedTuple

from entities import domains, linkedin, normalize
from entities.apollo import map_headers
from entities.apollo_sample import write_csv


def sample_rows(n_rows: int) -> list[dict[str, str]]:
    buffer = io.StringIO(newline="")
    write_csv(buffer, n_rows, max(1, n_rows // 5))
    buffer.seek(0)
    reader = csv.reader(buffer)
    mapping = map_headers(next(reader))
    return [mapping.extract(row) for row in reader]


def clear_caches() -> None:
    for module in (domains, linkedin, normalize):
        for value in vars(module).values():
            cache_clear = getattr(value, "cache_clear", None)
            if callable(cache_clear):
                cache_clear()


class Run(NamedTuple):
    wall: float
    cpu: float


def timed_run(rows: list[dict[str, str]]) -> Run:
    clear_caches()
    wall, cpu = time.perf_counter(), time.process_time()
    # Results are kept, as the pipeline keeps a chunk's documents, so GC costs count too.
    results = [normalize.normalize_item(fields) for fields in rows]
    run = Run(time.perf_counter() - wall, time.process_time() - cpu)
    del results
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one run")
    args = parser.parse_args()

    rows = sample_rows(args.rows)
    runs = [timed_run(rows) for _ in range(args.repeat)]
    # CPU time too: on a busy machine it moves less than wall time.
    for label, best in (("wall", min(r.wall for r in runs)), ("cpu", min(r.cpu for r in runs))):
        print(
            f"{label}: {len(rows):,} rows in {best:.3f} s (best of {args.repeat}), "
            f"{len(rows) / best:,.0f} rows/s, {best / len(rows) * 1e6:.2f} µs/row"
        )

    if args.profile:
        clear_caches()
        profiler = cProfile.Profile()
        profiler.runcall(lambda: [normalize.normalize_item(fields) for fields in rows])
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
