"""`make bench`: start the servers, run the four benchmarks, write the table and the charts.

    python -m bench.run [--quick] [--only ingestion,sockets,scale] [--update-readme]

Every setting has an environment variable (see the README's Performance section). A
section that fails, or needs an endpoint this build lacks, is reported as such in the
table; the others still run.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from bench import databases, ingestion, replies, report, sockets
from bench.servers import ROOT, collect_static, manage, server_env

RESULTS = ROOT / "bench" / "results"
ALL_SECTIONS = {"ingestion", "sockets", "scale", "replies"}
WORK = RESULTS / "tmp"  # databases and server logs; not committed


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def settings(quick: bool) -> dict:
    """The bench's parameters: environment variables over the defaults (smaller with --quick)."""
    return {
        "port": _env_int("BENCH_PORT", 8400),
        "database_url": os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/inbox_bench"
        ),
        "redis_url": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "clients": _env_int("BENCH_CLIENTS", 16),
        "seconds": _env_int("BENCH_SECONDS", 3 if quick else 10),
        "conversations": _env_int("BENCH_CONVERSATIONS", 2_000 if quick else 100_000),
        "messages": _env_int("BENCH_MESSAGES", 20_000 if quick else 1_000_000),
        "thread": _env_int("BENCH_THREAD", 1_000 if quick else 10_000),
        "push_events": _env_int("BENCH_PUSH_EVENTS", 5 if quick else 30),
        "memory_sockets": _env_int("BENCH_MEMORY_SOCKETS", 100 if quick else 1_000),
        "view_seconds": float(os.environ.get("BENCH_VIEW_SECONDS", 1 if quick else 3)),
        "reply_samples": _env_int("BENCH_REPLY_SAMPLES", 20 if quick else 200),
        "reply_backlog": _env_int("BENCH_REPLY_BACKLOG", 100 if quick else 1_000),
    }


def _pg(config: dict, suffix: str) -> str:
    name = config["database_url"].rsplit("/", 1)[1]
    return databases.postgres_with_name(config["database_url"], f"{name}_{suffix}")


def _log(message: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", flush=True)


def _error(exc: BaseException) -> dict:
    traceback.print_exc()
    lines = str(exc).strip().splitlines()
    return {"error": f"{type(exc).__name__}: {lines[-1] if lines else ''}"}


def ingestion_section(config: dict, postgres: bool, redis: bool, profile_dir: Path | None) -> dict:
    # SQLite is the one-process setup, with the in-process channel layer; PostgreSQL's
    # processes share their pushes through Redis (when it is reachable), as deployed.
    setups = [("SQLite, 1 process", databases.sqlite_url(WORK / "ingest.sqlite3"), "", 1)]
    if postgres:
        layer = config["redis_url"] if redis else ""
        setups += [
            ("PostgreSQL, 1 process", _pg(config, "ingest"), layer, 1),
            ("PostgreSQL, 2 processes", _pg(config, "ingest"), layer, 2),
        ]
    only = os.environ.get("BENCH_INGESTION_ONLY", "")
    runs = []
    for label, url, redis_url, processes in setups:
        if only and only not in label:
            continue
        _log(f"ingestion: {label}")
        try:
            runs.append(
                ingestion.run_config(
                    label=label,
                    database_url=url,
                    redis_url=redis_url,
                    processes=processes,
                    first_port=config["port"],
                    clients=config["clients"],
                    seconds=config["seconds"],
                    log_dir=WORK,
                    profile_to=_profile_path(profile_dir, label),
                )
            )
        except Exception as exc:
            runs.append({"label": label, **_error(exc)})
    return {"clients": config["clients"], "seconds": config["seconds"], "runs": runs}


def _profile_path(profile_dir: Path | None, label: str) -> Path | None:
    if profile_dir is None or "2 processes" in label:
        return None
    return profile_dir / f"profile-webhook-{label.split(',')[0].lower()}.svg"


def sockets_section(config: dict, postgres: bool, redis: bool) -> dict:
    _log("live push and memory")
    url = _pg(config, "live") if postgres else databases.sqlite_url(WORK / "live.sqlite3")
    try:
        result = sockets.run(
            database_url=url,
            redis_url=config["redis_url"] if redis else "",
            port=config["port"] + 10,
            log_dir=WORK,
            ks=[1, 50, 200],
            events=config["push_events"],
            memory_sockets=config["memory_sockets"],
        )
    except Exception as exc:
        return _error(exc)
    if not redis:
        result.setdefault("live_push", {})["note"] = (
            "Redis was not reachable: measured with the in-memory channel layer"
        )
    return result


def replies_section(config: dict, postgres: bool, redis: bool) -> dict:
    """Reply latency and the outbox's drain: one worker on SQLite (its one writer), two on
    PostgreSQL (SKIP LOCKED shares the queue) with Redis when it answers, as deployed."""
    each = f"{replies.CONCURRENCY} attempts at once each"
    setups = [(f"SQLite, 1 worker ({each})", databases.sqlite_url(WORK / "replies.sqlite3"), 1, "")]
    if postgres:
        store = "PostgreSQL + Redis" if redis else "PostgreSQL"
        layer = config["redis_url"] if redis else ""
        setups.append((f"{store}, 2 workers ({each})", _pg(config, "replies"), 2, layer))
    runs = []
    for label, url, workers, redis_url in setups:
        _log(f"replies: {label}")
        try:
            runs.append(
                replies.run_config(
                    label=label,
                    database_url=url,
                    workers=workers,
                    redis_url=redis_url,
                    port=config["port"] + 20,
                    log_dir=WORK,
                    samples=config["reply_samples"],
                    backlog=config["reply_backlog"],
                )
            )
        except Exception as exc:
            runs.append({"label": label, **_error(exc)})
    return {"runs": runs}


def _seeded(url: str, conversations: int, messages: int, thread: int) -> bool:
    try:
        return (
            databases.scalar(url, "SELECT count(*) FROM inbox_conversation") == conversations
            and databases.scalar(url, "SELECT count(*) FROM inbox_message") == messages
            and databases.scalar(url, "SELECT max(message_count) FROM inbox_conversation") >= thread
        )
    except Exception:
        return False


def _prepare(url: str, conversations: int, messages: int, thread: int) -> str:
    """A database seeded at this size: reused when it already is (after migrating it)."""
    env = server_env(database_url=url)
    databases.ensure_exists(url)
    manage("migrate", "--noinput", env=env)
    if _seeded(url, conversations, messages, thread):
        return "reused the database seeded by an earlier run"
    databases.recreate(url)
    manage("migrate", "--noinput", env=env)
    started = time.monotonic()
    manage(
        "seed",
        f"--conversations={conversations}",
        f"--messages={messages}",
        f"--largest-thread={thread}",
        env=env,
    )
    return f"seeded in {time.monotonic() - started:.0f} s"


def _measure_views(url: str, out: Path, *extra: str) -> dict:
    env = server_env(database_url=url)
    subprocess.run(
        [sys.executable, "-m", "bench.inbox_scale", "--out", str(out), *extra],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=600,
    )
    return json.loads(out.read_text())


def scale_section(config: dict, postgres: bool) -> dict:
    targets = {
        "sqlite": (
            databases.sqlite_url(WORK / "scale.sqlite3"),
            databases.sqlite_url(WORK / "scale-small.sqlite3"),
        )
    }
    if postgres:
        targets["postgresql"] = (_pg(config, "scale"), _pg(config, "scale_small"))
    big_size = (config["conversations"], config["messages"], config["thread"])
    # The same shape at 1/100 of the size: the query counts must not change with it.
    small_size = tuple(max(10, n // 100) for n in big_size)

    def prepare(vendor: str) -> str:
        big_url, small_url = targets[vendor]
        _prepare(small_url, *small_size)
        _log(f"inbox at scale, {vendor}: seeding {config['messages']:,} messages (or reusing)")
        seeding = _prepare(big_url, *big_size)
        _log(f"inbox at scale, {vendor}: {seeding}")
        return seeding

    # The databases are filled side by side (SQLite's seeding is one core in this process's
    # child, PostgreSQL's mostly the server's), then measured one at a time, alone.
    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        preparing = {vendor: pool.submit(prepare, vendor) for vendor in targets}
    section: dict = {}
    for vendor, (big_url, small_url) in targets.items():
        try:
            seeding = preparing[vendor].result()
            _log(f"inbox at scale, {vendor}: measuring")
            small = _measure_views(small_url, WORK / f"scale-small-{vendor}.json", "--count-only")
            big = _measure_views(
                big_url, WORK / f"scale-{vendor}.json", f"--budget={config['view_seconds']}"
            )
            section[vendor] = {"small": small, "big": big, "seeding": seeding}
        except Exception as exc:
            section[vendor] = _error(exc)
    return section


def machine() -> dict:
    info: dict = {"cores": os.cpu_count(), "python": platform.python_version()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(
            line.split(":", 1)[1].strip()
            for line in cpuinfo.splitlines()
            if line.startswith("model name")
        )
        meminfo = Path("/proc/meminfo").read_text().split()
        info["memory_gb"] = int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20
    except (OSError, StopIteration, ValueError):
        pass
    for name, command in (
        ("postgresql", ["psql", "--version"]),
        ("redis", ["redis-server", "--version"]),
    ):
        try:
            out = subprocess.run(
                command, capture_output=True, text=True, timeout=5, check=False
            ).stdout
            info[name] = next(
                (w for w in out.split() if w[:1].isdigit() or w.startswith("v=")), "?"
            ).removeprefix("v=")
        except OSError:
            info[name] = "not installed"
    info["load_before"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return info


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="small data and short runs (a smoke test)"
    )
    parser.add_argument(
        "--only", default="ingestion,sockets,scale,replies", help="comma-separated sections"
    )
    parser.add_argument("--out", type=Path, default=None, help="default: bench/results/")
    parser.add_argument(
        "--update-readme", action="store_true", help="copy the table into the README"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record flame graphs of the server under webhook load (needs py-spy)",
    )
    parser.add_argument(
        "--note", default=os.environ.get("BENCH_NOTE", ""), help="a remark for the table"
    )
    args = parser.parse_args()
    config = settings(args.quick)
    sections = set(args.only.split(","))
    unknown = sections - ALL_SECTIONS
    if unknown:
        parser.error(f"unknown sections {', '.join(sorted(unknown))}; choose from {ALL_SECTIONS}")
    # A smoke or partial run must not overwrite the committed results, nor the README's copy.
    partial = args.quick or sections != ALL_SECTIONS
    if args.out is None:
        args.out = WORK / ("quick" if args.quick else "partial") if partial else RESULTS
    if partial:
        args.update_readme = False
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    collect_static()
    postgres = databases.postgres_reachable(config["database_url"])
    redis = _redis_reachable(config["redis_url"])
    results: dict = {
        "started_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "config": {k: v for k, v in config.items() if k not in {"database_url"}}
        | {"quick": args.quick},
        "note": args.note,
    }
    if not postgres:
        _log(f"PostgreSQL is not reachable at {config['database_url']}: SQLite only")
    if "ingestion" in sections:
        profile_dir = args.out if args.profile else None
        if profile_dir:
            profile_dir.mkdir(parents=True, exist_ok=True)
        results["ingestion"] = ingestion_section(config, postgres, redis, profile_dir)
    if "sockets" in sections:
        results["sockets"] = sockets_section(config, postgres, redis)
    if "scale" in sections:
        results["scale"] = scale_section(config, postgres)
    if "replies" in sections:
        results["replies"] = replies_section(config, postgres, redis)
    results["machine"]["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results["duration_s"] = time.monotonic() - started
    table = report.write(results, args.out)
    images = [p.name for p in report.charts(results, args.out)]
    print(table)
    _log(
        f"results in {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}: "
        f"results.md, results.json, {', '.join(images)}; {results['duration_s']:.0f} s in all"
    )
    if args.update_readme:
        readme_images = [f"bench/results/{name}" for name in images]
        if report.readme_update(ROOT / "README.md", table, readme_images):
            _log("README.md's Performance section updated")


def _redis_reachable(url: str) -> bool:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    main()
