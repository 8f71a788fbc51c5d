"""Load: locust (headless) against gunicorn on loopback, a tenant of 100,000 contacts.

Builds a tenant of 100,000 contacts and 4 tenants of 10,000 (`--small`: 10,000 and 4 x 1,000),
starts gunicorn (crm.wsgi, production settings, `--workers`, default 2 x CPUs + 1) and sends it
locust users (bench/_locustfile.py): each a member of the big tenant with its own token, with
`--think` seconds between requests, doing the contacts list (4), a filtered list (2, `?filter=`),
a contact update (2), an activity create (2) and an AI chat message on the offline provider (1).

Two phases in the same run: one user (the baseline) and `--users` users (default 50), each for
`--seconds`, statistics counted once every user has started. Prints requests/s, p50/p95/p99 and
the error rate per endpoint for both.

`--cut-database SECONDS` adds the fault of issue 17, PostgreSQL lost under load: gunicorn then
reaches PostgreSQL through a TCP proxy on loopback (tests/live.py), which is cut for that long in
the middle of a third phase (open connections closed, new ones never answered), then a fourth
phase shows the same gunicorn serving again. Its errors should be 503s, none slower than the
queue plus DATABASE_CONNECT_TIMEOUT (2 s here), and none after the cut.

Goal (issue 17): no errors at 50 users, and the list's p95 at 50 users at most 10 times its
single-user p50 (the ratio of the result line).
"""

import argparse
import csv
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import requests
from _common import REPO, django_setup, progress, result_line, step

DATABASE = "ridgeline_bench_load"
GOAL = 10
WARMUP_SECONDS = 10
LIST = "contacts list"
ENDPOINTS = [
    LIST,
    "contacts filtered",
    "contact update",
    "activity create",
    "ai chat message",
    "ai conversation create",
]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--small", action="store_true", help="a tenth of the data and shorter phases")
parser.add_argument("--users", type=int, default=50, help="concurrent users of the load phase")
parser.add_argument("--seconds", type=int, help="length of each phase (default 60, --small 20)")
parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1, help="gunicorn sync workers")
parser.add_argument("--think", type=float, nargs=2, default=[0.5, 1.5], metavar=("MIN", "MAX"), help="seconds")
parser.add_argument(
    "--cut-database",
    type=int,
    metavar="SECONDS",
    help="then a fault phase: gunicorn reaches PostgreSQL through a TCP proxy, cut this long mid-phase",
)
args = parser.parse_args()
if args.seconds is None:
    args.seconds = 20 if args.small else 60
database_url = django_setup(DATABASE)

import _data  # noqa: E402
import psutil  # noqa: E402
import redis  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from contacts.models import Contact  # noqa: E402
from crm.models import AuthToken, Membership, MembershipStatus, Role  # noqa: E402

if TYPE_CHECKING:
    from tests.live import TcpProxy


def build() -> tuple[_data.SeededTenant, list[str], list[int]]:
    """The tenants; returns the big one, a token for each of its members who may write, and some of its contacts."""
    big, other = (10_000, 1_000) if args.small else (100_000, 10_000)
    _data.seed(0.17)
    with step(f"tenants and members (1 x {big:,} contacts, 4 x {other:,})"):
        tenants = _data.tenants_create([big] + [other] * 4)
    with step(f"contacts ({big + 4 * other:,}, set-based)"):
        done = 0
        for tenant in tenants:
            _data.contacts_create(tenant, on_progress=lambda stop, base=done: progress(f"  contacts {base + stop:,}"))
            done += tenant.contacts
    with step("VACUUM ANALYZE"):
        _data.vacuum_analyze("contacts", "tenants", "tenant_users", "users")
    target = tenants[0]
    writers = Membership.objects.filter(
        tenant_id=target.id,
        status=MembershipStatus.ACTIVE,
        role__in=[Role.OWNER, Role.ADMIN, Role.MANAGER, Role.MEMBER],
    ).select_related("user")
    tokens = [AuthToken.objects.create(user=membership.user)[1] for membership in writers]
    contact_ids = list(
        Contact.objects.filter(tenant_id=target.id, is_deleted=False).order_by("?").values_list("pk", flat=True)[:2000]
    )
    return target, tokens, contact_ids


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def gunicorn(port: int, usage_queue: str, gunicorn_database_url: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm.settings.production",
        "DATABASE_URL": gunicorn_database_url,
        "DATABASE_CONNECT_TIMEOUT": "2",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",  # plain HTTP on loopback; behind TLS in production
        "AI_BASE_URL": "",  # the offline assistant
        "FILTER_USAGE_QUEUE": usage_queue,
        "LOG_LEVEL": "WARNING",
    }
    env.pop("DEBUG", None)
    command = [sys.executable, "-m", "gunicorn", "crm.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", str(args.workers), "--timeout", "60", "--log-level", "warning"]
    return subprocess.Popen(command, env=env, cwd=REPO, start_new_session=True)  # noqa: S603


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=30).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"gunicorn did not answer /healthz at {url}")


def locust(
    url: str, users: int, env: dict[str, str], folder: Path, name: str, *, seconds: int
) -> dict[str, dict[str, float]]:
    """One headless locust run; its per-endpoint statistics (from its CSV), by endpoint name."""
    prefix = folder / name
    command = [sys.executable, "-m", "locust", "-f", str(REPO / "bench" / "_locustfile.py"), "--headless"]
    command += ["--host", url, "-u", str(users), "-r", str(max(1, users // 5)), "-t", f"{seconds}s"]
    command += ["--reset-stats", "--csv", str(prefix), "--only-summary", "--stop-timeout", "10"]
    command += ["--loglevel", "WARNING", "--exit-code-on-error", "0"]
    done = subprocess.run(command, env={**os.environ, **env}, cwd=REPO, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"locust failed ({done.returncode}):\n{done.stderr[-3000:]}")
    rows = {}
    with open(f"{prefix}_stats.csv", newline="") as stats:
        for row in csv.DictReader(stats):
            requests_count = int(row["Request Count"])
            rows[row["Name"]] = {
                "requests": requests_count,
                "failures": int(row["Failure Count"]),
                "rps": float(row["Requests/s"]),
                "p50": float(row["50%"]),
                "p95": float(row["95%"]),
                "p99": float(row["99%"]),
                "max": float(row["Max Response Time"]),
                "error_rate": int(row["Failure Count"]) / requests_count if requests_count else 0.0,
            }
    with open(f"{prefix}_failures.csv", newline="") as failures:
        for row in csv.DictReader(failures):
            progress(f"  failure x{row['Occurrences']}: {row['Method']} {row['Name']}: {row['Error'][:200]}")
    return rows


def cut_database(
    proxy: "TcpProxy", url: str, env: dict[str, str], folder: Path
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """A load phase with PostgreSQL cut in its middle, then one after (the same gunicorn, no restart)."""
    margin = 10

    def cut() -> None:
        time.sleep(margin)
        progress(f"  PostgreSQL cut for {args.cut_database} s")
        proxy.cut()
        time.sleep(args.cut_database)
        proxy.restore()
        progress("  PostgreSQL back")

    cutter = threading.Thread(target=cut)
    seconds = args.cut_database + 2 * margin
    with step(f"fault: {args.users} users for {seconds} s, PostgreSQL cut for {args.cut_database} s"):
        cutter.start()
        fault = locust(url, args.users, env, folder, "fault", seconds=seconds)
        cutter.join()
    with step(f"after the cut: {args.users} users for {args.seconds} s"):
        after = locust(url, args.users, env, folder, "after", seconds=args.seconds)
    return fault, after


def cpu_seconds(server: subprocess.Popen) -> dict[str, float]:
    """CPU time (user + system) used so far by gunicorn's workers and by the database's backends
    (gunicorn keeps its connections, so the same backends serve the whole phase)."""

    def used(process: psutil.Process) -> float:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            return 0.0
        return times.user + times.system

    workers = psutil.Process(server.pid).children(recursive=True)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        backends = [psutil.Process(pid) for (pid,) in cursor.fetchall() if psutil.pid_exists(pid)]
    return {"gunicorn": sum(map(used, workers)), "postgresql": sum(map(used, backends))}


def report(title: str, rows: dict[str, dict[str, float]]) -> None:
    print(f"{title}")
    print(f"  {'endpoint':<24} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name in [*ENDPOINTS, "Aggregated"]:
        if name in rows:
            row = rows[name]
            print(
                f"  {name:<24} {row['requests']:>8} {row['rps']:>8.1f} {row['p50']:>8.0f} {row['p95']:>8.0f} "
                f"{row['p99']:>8.0f} {row['error_rate']:>7.2%}"
            )


def main() -> None:
    tenant, tokens, contact_ids = build()
    usage_queue = f"ridgeline-bench-load-{os.getpid()}:filter-usage"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        (folder / "contacts").write_text("\n".join(map(str, contact_ids)))
        env = {
            "LOAD_TOKENS": ",".join(tokens),
            "LOAD_TENANT": tenant.subdomain,
            "LOAD_CONTACT_IDS": str(folder / "contacts"),
            "LOAD_THINK_MIN": str(args.think[0]),
            "LOAD_THINK_MAX": str(args.think[1]),
        }
        proxy = None
        gunicorn_database_url = database_url
        if args.cut_database:
            from tests.live import TcpProxy

            parts = urlsplit(database_url)
            proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
            gunicorn_database_url = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
        server = gunicorn(port, usage_queue, gunicorn_database_url)
        fault = after = None
        try:
            with step(f"gunicorn ({args.workers} workers) on {url}"):
                wait_ready(url)
            # Every worker's first requests load code and fill caches: not what the baseline measures.
            with step(f"warm-up: {args.workers * 2} users for {WARMUP_SECONDS} s (not counted)"):
                locust(url, args.workers * 2, env, folder, "warmup", seconds=WARMUP_SECONDS)
            with step(f"baseline: 1 user for {args.seconds} s"):
                single = locust(url, 1, env, folder, "single", seconds=args.seconds)
            with step(f"load: {args.users} users for {args.seconds} s"):
                cpu_before = cpu_seconds(server)
                loaded = locust(url, args.users, env, folder, "load", seconds=args.seconds)
                cpu_after = cpu_seconds(server)
            if proxy is not None:
                fault, after = cut_database(proxy, url, env, folder)
        finally:
            server.terminate()
            server.wait(timeout=60)
            if proxy is not None:
                proxy.stop()
            redis.Redis.from_url(settings.FILTER_USAGE_REDIS_URL).delete(usage_queue)

    print(
        f"tenant of {tenant.contacts:,} contacts (+ 4 others), {len(tokens)} members with tokens, gunicorn "
        f"{args.workers} sync workers, think time {args.think[0]}-{args.think[1]} s, load average "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (locust, gunicorn and PostgreSQL share them)"
    )
    report("1 user (baseline)", single)
    report(f"{args.users} users", loaded)
    if fault is not None and after is not None:
        report(f"{args.users} users, PostgreSQL cut for {args.cut_database} s mid-phase (errors: the 503s)", fault)
        report(f"{args.users} users, after the cut (same gunicorn)", after)
        print(
            f"during the cut: slowest response {fault['Aggregated']['max'] / 1000:.1f} s; "
            f"after it: {after['Aggregated']['failures']} errors in {after['Aggregated']['requests']} requests"
        )
    served = loaded["Aggregated"]["requests"]
    cpu_ms = {side: (cpu_after[side] - cpu_before[side]) * 1000 / max(1, served) for side in cpu_before}
    print(
        f"CPU per request at {args.users} users (a bound from above: the ramp-up's requests are not counted): "
        f"gunicorn {cpu_ms['gunicorn']:.1f} ms, PostgreSQL "
        f"{cpu_ms['postgresql']:.1f} ms; the phase got {sum(cpu_after.values()) - sum(cpu_before.values()):.1f} "
        f"CPU-seconds of {args.seconds * (os.cpu_count() or 1)} (the rest went to locust and to other work)"
    )
    baseline, figure = single[LIST]["p50"], loaded[LIST]["p95"]
    errors = loaded["Aggregated"]["failures"]
    print(
        f"list p95 at {args.users} users / single-user p50: {figure / baseline:.2f} (goal <= {GOAL}); errors {errors}"
    )
    result_line(
        bench="load",
        figure=figure,
        baseline=baseline,
        goal=GOAL,
        users=args.users,
        seconds=args.seconds,
        errors=errors,
        error_rate=loaded["Aggregated"]["error_rate"],
        rps=loaded["Aggregated"]["rps"],
        gunicorn_cpu_ms_per_request=cpu_ms["gunicorn"],
        postgresql_cpu_ms_per_request=cpu_ms["postgresql"],
        contacts=tenant.contacts,
        **(
            {
                "cut_seconds": args.cut_database,
                "cut_errors": fault["Aggregated"]["failures"],
                "cut_max_ms": fault["Aggregated"]["max"],
                "after_cut_errors": after["Aggregated"]["failures"],
            }
            if fault is not None and after is not None
            else {}
        ),
        **{
            f"{name.replace(' ', '_')}_{key}": loaded[name][key]
            for name in ENDPOINTS
            if name in loaded
            for key in ("rps", "p50", "p95", "p99", "error_rate")
        },
    )


main()
