"""The harness every benchmark shares: arguments, progress, its own database, timing, the result line.

A benchmark builds its data in a database of its own (dropped and recreated on every run, so
runs repeat), measures its figure and a baseline in the same run, shows progress on stderr
while it works, and prints one JSON object as the last line of stdout (see DESIGN.md).
"""

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SERVER_URL = "postgres://postgres@127.0.0.1:5432/postgres"

_started = time.perf_counter()


def parse_args(description: str, *, iterations: int, small_iterations: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--small", action="store_true", help="a quick run on a tenth of the data")
    parser.add_argument("--iterations", type=int, help="timed requests per case (after warm-up)")
    args = parser.parse_args()
    if args.iterations is None:
        args.iterations = small_iterations if args.small else iterations
    if args.iterations < 20:
        parser.error("--iterations must be at least 20 for a p95 to mean anything")
    return args


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - _started:7.1f}s] {message}", file=sys.stderr, flush=True)


@contextmanager
def step(message: str) -> Iterator[None]:
    progress(f"{message} ...")
    began = time.perf_counter()
    yield
    progress(f"{message}: done in {time.perf_counter() - began:.1f}s")


def _database_url(name: str) -> tuple[str, str]:
    """(URL of the benchmark's database, URL of the server's maintenance database).

    The server comes from DATABASE_URL when it is set (only the database name is replaced),
    else the loopback PostgreSQL.
    """
    parts = urlsplit(os.environ.get("DATABASE_URL") or DEFAULT_SERVER_URL)
    return urlunsplit(parts._replace(path=f"/{name}")), urlunsplit(parts._replace(path="/postgres"))


def django_setup(database: str, *, migrate: bool = True) -> str:
    """Drop and recreate `database`, point Django at it (DEBUG off), migrate; return its URL.

    `migrate=False` leaves the database empty, for a benchmark that migrates it to a state of
    its own. Must run before anything imports Django models.
    """
    import psycopg

    url, server_url = _database_url(database)
    with step(f"database {database}: drop and create"), psycopg.connect(server_url, autocommit=True) as server:
        server.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        server.execute(f'CREATE DATABASE "{database}"')

    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "crm.settings.base"
    # Without DEBUG, Django records no queries and the figures are those of production code.
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(REPO))

    import django
    from django.core.management import call_command

    django.setup()
    if migrate:
        with step("migrate"):
            call_command("migrate", verbosity=0)
    return url


def time_ms(call: Callable[[], object], *, iterations: int, warmup: int) -> list[float]:
    """Wall-clock milliseconds of `iterations` calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(iterations):
        began = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - began) / 1e6)
    return samples


def time_pair_ms(
    first: Callable[[], object], second: Callable[[], object], *, iterations: int, warmup: int, rounds: int = 10
) -> tuple[list[float], list[float]]:
    """Time two calls in alternating rounds, so drift (other load, CPU clocks) hits both alike."""
    per_round = max(1, iterations // rounds)
    first_samples: list[float] = []
    second_samples: list[float] = []
    for index in range(rounds):
        first_samples += time_ms(first, iterations=per_round, warmup=warmup if index == 0 else 3)
        second_samples += time_ms(second, iterations=per_round, warmup=warmup if index == 0 else 3)
    return first_samples, second_samples


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[94]


def result_line(*, bench: str, figure: float, baseline: float, goal: float, **extra: object) -> None:
    """The last line of stdout: the figure, its same-run baseline, their ratio and the goal."""
    record = {
        "bench": bench,
        "figure": round(figure, 3),
        "baseline": round(baseline, 3),
        "ratio": round(figure / baseline, 2),
        "goal": goal,
    }
    record.update({key: round(value, 3) if isinstance(value, float) else value for key, value in extra.items()})
    print(json.dumps(record), flush=True)
