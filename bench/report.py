"""The results as a markdown table, JSON and matplotlib charts, and the README's copy."""

import json
import re
from pathlib import Path

README_START = "<!-- bench-results:start -->"
README_END = "<!-- bench-results:end -->"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _cores(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _failed(section: dict) -> str | None:
    if "error" in section:
        return f"_failed: {section['error']}_"
    if "skipped" in section:
        return f"_skipped: {section['skipped']}_"
    return None


def ingestion_md(section: dict) -> list[str]:
    lines = [
        f"### 1. Ingestion ({section.get('clients', '?')} concurrent clients, "
        f"{section.get('seconds', '?')} s per run, signed NEW_MESSAGE events with unique ids)",
        "",
    ]
    if failed := _failed(section):
        return [*lines, failed, ""]
    lines += [
        "| setup | `/healthz` req/s | webhook events/s | ratio (goal ≥ 70%) "
        "| webhook p50 / p99 ms | errors | accepted | stored | CPU: server / client "
        "(cores), machine busy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in section.get("runs", []):
        if "error" in run:
            lines.append(f"| {run['label']} | _failed: {run['error']}_ | | | | | | | |")
            continue
        h = run["healthz"]
        watched = run.get("watched")
        shown = [(run["label"], run["webhook"], run["ratio"])]
        if watched:
            label = f"{run['label']}, {watched['sockets']} sockets"
            shown.append((label, watched, run["watched_ratio"]))
        for label, w, share in shown:
            lines.append(
                f"| {label} | {h['requests_per_s']:.0f} | {w['requests_per_s']:.0f} "
                f"| {_pct(share)} | {_ms(w['p50_ms'])} / {_ms(w['p99_ms'])} "
                f"| {w['errors']} | {w['accepted']} | {w['stored']} "
                f"| {_cores(w.get('server_cpu'))} / {_cores(w.get('client_cpu'))}, "
                f"{_pct(w.get('machine_busy'))} |"
            )
    watchedruns = [r["watched"] for r in section.get("runs", []) if r.get("watched")]
    if watchedruns:
        lines += [
            "",
            "Watched runs: frames received by the sockets / resyncs (missed frames) "
            + ", ".join(f"{w['frames']} / {w['resyncs']}" for w in watchedruns)
            + "; accepted and stored count both runs of a setup.",
        ]
    return [*lines, ""]


def live_md(section: dict) -> list[str]:
    lines = [
        "### 2. Live push (a NEW_CONVERSATION webhook → its row fragment at every socket)",
        "",
        "Two clocks, both in the client: from the webhook's answer (the goal's measure; "
        "negative when the row reached the socket before the provider had its answer, as "
        "when the server pushes before it answers), and from the webhook request being sent "
        "(which adds the webhook's own work: an upper bound).",
        "",
    ]
    if failed := _failed(section):
        return [*lines, failed, ""]
    push = section.get("live_push", {})
    if push.get("note"):
        lines.append(f"_{push['note']}_")
    if push.get("trials"):
        lines += [
            f"Channel layer: {section.get('channel_layer')}; database: {section.get('database')}.",
            "",
            "| sockets K | events | after the answer p50 / p99 ms (goal p99 < 50 at K=200) "
            "| from the request p50 / p99 ms | from the request until every socket has it, "
            "p99 ms | missed | client CPU |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for t in push["trials"]:
            lines.append(
                f"| {t['k']} | {t['events']} "
                f"| {_ms(t['after_answer_p50_ms'])} / {_ms(t['after_answer_p99_ms'])} "
                f"| {_ms(t['p50_ms'])} / {_ms(t['p99_ms'])} "
                f"| {_ms(t['all_sockets_p99_ms'])} | {t['missed']} | {_pct(t['client_cpu'])} |"
            )
    return [*lines, ""]


def scale_md(section: dict) -> list[str]:
    lines = [
        "### 3. Inbox at scale (server time in-process: Django test client, "
        "queries by `CaptureQueriesContext`)",
        "",
    ]
    if failed := _failed(section):
        return [*lines, failed, ""]
    databases = [d for d in ("sqlite", "postgresql") if d in section]
    for vendor in databases:
        data = section[vendor]
        if failed := _failed(data):
            lines += [f"**{vendor}**: {failed}", ""]
            continue
        big, small = data["big"], data.get("small", {})
        lines += [
            f"**{vendor}**: {big['conversations']:,} conversations, {big['messages']:,} messages, "
            f"largest thread {big['largest_thread_messages']:,} messages "
            f"({data.get('seeding', '')}).",
            "",
            "| view | p50 ms | p95 ms | goal p95 | queries at "
            f"{small.get('messages', 0):,} → {big['messages']:,} messages | notes |",
            "|---|---:|---:|---:|---:|---|",
        ]
        small_queries = {v["name"]: v.get("queries") for v in small.get("views", [])}
        for view in big["views"]:
            goal = f"< {view['goal_ms']:g} ms" if view.get("goal_ms") else ""
            if not view.get("available"):
                lines.append(f"| {view['name']} | - | - | {goal} | - | {view.get('note', '')} |")
                continue
            note = []
            if view.get("messages"):
                note.append(f"{view['messages']:,} messages rendered")
            if view.get("goal_ms") and view.get("p95_ms") and view["p95_ms"] > view["goal_ms"]:
                note.append(f"misses the goal by {view['p95_ms'] - view['goal_ms']:.0f} ms")
            queries = f"{small_queries.get(view['name'], '-')} → {view['queries']}"
            lines.append(
                f"| {view['name']} | {_ms(view.get('p50_ms'))} | {_ms(view.get('p95_ms'))} "
                f"| {goal} | {queries} | {'; '.join(note)} |"
            )
        lines.append("")
    return lines


def memory_md(section: dict) -> list[str]:
    lines = ["### 4. Memory (resident set of the server process)", ""]
    if failed := _failed(section):
        return [*lines, failed, ""]
    memory = section.get("memory", {})
    with_sockets = memory.get("with_sockets_rss_mb")
    lines += [
        "| idle | with 1,000 sockets | per socket |",
        "|---:|---:|---:|",
        f"| {_ms(memory.get('idle_rss_mb'))} MiB "
        f"| {_ms(with_sockets) + ' MiB' if with_sockets else '-'} "
        f"| {_ms(memory.get('per_socket_kb')) + ' KiB' if with_sockets else '-'} |",
    ]
    if memory.get("note"):
        lines += ["", f"_{memory['note']}_"]
    return [*lines, ""]


def replies_md(section: dict) -> list[str]:
    lines = [
        "### 5. Replies (the agent's POST → the stub provider, which answers in 50 ms)",
        "",
    ]
    if failed := _failed(section):
        return [*lines, failed, ""]
    lines += [
        "| setup | POST → provider p50 / p99 ms (goal p99 < 200) | backlog | drained at "
        "(goal ≥ 100/s on PostgreSQL) | duplicates | workers' CPU per reply, machine busy |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for run in section.get("runs", []):
        if "error" in run:
            lines.append(f"| {run['label']} | {run['error']} | | | | |")
            continue
        latency, backlog = run.get("latency_ms", {}), run.get("backlog", {})
        lines.append(
            f"| {run['label']} | {_ms(latency.get('p50'))} / {_ms(latency.get('p99'))} "
            f"| {backlog.get('received', 0)} of {backlog.get('replies', 0)} "
            f"| {backlog.get('replies_per_s', 0):.0f} replies/s | {backlog.get('duplicates', 0)} "
            f"| {backlog.get('workers_cpu_ms_per_reply', 0):.1f} ms, "
            f"{backlog.get('machine_busy', 0):.0%} |"
        )
    return [*lines, ""]


def markdown(results: dict) -> str:
    machine = results.get("machine", {})
    lines = [
        f"Run {results.get('started_at', '?')} in {results.get('duration_s', 0):.0f} s on "
        f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
        f"{machine.get('memory_gb', 0):.0f} GB RAM; Python {machine.get('python', '?')}, "
        f"PostgreSQL {machine.get('postgresql', '?')}, Redis {machine.get('redis', '?')}. "
        f"Load average before the run: {machine.get('load_before', '?')}, after: "
        f"{machine.get('load_after', '?')}.",
        "",
    ]
    if results.get("note"):
        lines += [f"**Note:** {results['note']}", ""]
    lines += ingestion_md(results.get("ingestion", {"skipped": "not run"}))
    lines += live_md(results.get("sockets", {"skipped": "not run"}))
    lines += scale_md(results.get("scale", {"skipped": "not run"}))
    lines += memory_md(results.get("sockets", {"skipped": "not run"}))
    lines += replies_md(results.get("replies", {"skipped": "not run"}))
    return "\n".join(lines)


def charts(results: dict, out: Path) -> list[Path]:
    """One PNG per section that has numbers; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    runs = [r for r in results.get("ingestion", {}).get("runs", []) if "error" not in r]
    if runs:
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        labels = [r["label"] for r in runs]
        xs = range(len(runs))
        left.bar(
            [x - 0.2 for x in xs],
            [r["healthz"]["requests_per_s"] for r in runs],
            0.4,
            label="/healthz",
        )
        left.bar(
            [x + 0.2 for x in xs],
            [r["webhook"]["requests_per_s"] for r in runs],
            0.4,
            label="webhook",
        )
        for x, r in zip(xs, runs, strict=True):
            if r["ratio"] is not None:
                left.annotate(
                    f"{r['ratio'] * 100:.0f}%",
                    (x + 0.2, r["webhook"]["requests_per_s"]),
                    ha="center",
                    va="bottom",
                )
        left.set_xticks(list(xs), labels, fontsize=8)
        left.set_ylabel("requests per second")
        left.set_title("Ingestion throughput (ratio to /healthz)")
        left.legend()
        right.bar(
            [x - 0.2 for x in xs], [r["webhook"]["p50_ms"] or 0 for r in runs], 0.4, label="p50"
        )
        right.bar(
            [x + 0.2 for x in xs], [r["webhook"]["p99_ms"] or 0 for r in runs], 0.4, label="p99"
        )
        right.set_xticks(list(xs), labels, fontsize=8)
        right.set_ylabel("ms")
        right.set_title("Webhook latency under load")
        right.legend()
        fig.tight_layout()
        written.append(_save(fig, out / "ingestion.png"))

    trials = results.get("sockets", {}).get("live_push", {}).get("trials", [])
    if trials:
        fig, ax = plt.subplots(figsize=(6, 4))
        ks = [t["k"] for t in trials]
        ax.plot(
            ks, [t["after_answer_p99_ms"] for t in trials], marker="o", label="p99 after the answer"
        )
        ax.plot(
            ks,
            [t["p50_ms"] for t in trials],
            marker="s",
            linestyle=":",
            label="p50 from the request",
        )
        ax.plot(
            ks,
            [t["p99_ms"] for t in trials],
            marker="s",
            linestyle=":",
            label="p99 from the request",
        )
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.axhline(50, color="red", linestyle="--", label="goal: p99 < 50 ms")
        ax.set_xlabel("connected sockets")
        ax.set_ylabel("ms until the row reaches a socket")
        ax.set_title("Live push")
        ax.legend()
        fig.tight_layout()
        written.append(_save(fig, out / "live_push.png"))

    scale = results.get("scale", {})
    vendors = [v for v in ("sqlite", "postgresql") if "big" in scale.get(v, {})]
    if vendors:
        names = [v["name"] for v in scale[vendors[0]]["big"]["views"]]
        fig, ax = plt.subplots(figsize=(11, 4.5))
        width = 0.8 / len(vendors)
        for n, vendor in enumerate(vendors):
            by_name = {v["name"]: v for v in scale[vendor]["big"]["views"]}
            values = [by_name.get(name, {}).get("p95_ms") or 0 for name in names]
            ax.bar([i + n * width for i in range(len(names))], values, width, label=f"{vendor} p95")
        ax.axhline(50, color="red", linestyle="--", label="goal: list/thread 50 ms")
        ax.axhline(100, color="orange", linestyle=":", label="goal: search 100 ms")
        ax.set_xticks(
            [i + width * (len(vendors) - 1) / 2 for i in range(len(names))],
            names,
            rotation=20,
            ha="right",
            fontsize=8,
        )
        ax.set_ylabel("server time p95, ms (log)")
        ax.set_yscale("log")
        ax.set_title("Inbox at scale (0 = not available in this build)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        written.append(_save(fig, out / "inbox.png"))

    memory = results.get("sockets", {}).get("memory", {})
    if memory.get("idle_rss_mb"):
        fig, ax = plt.subplots(figsize=(5, 4))
        bars = {"idle": memory["idle_rss_mb"]}
        if memory.get("with_sockets_rss_mb"):
            bars[f"{memory.get('sockets', 1000)} sockets"] = memory["with_sockets_rss_mb"]
        ax.bar(list(bars), list(bars.values()))
        ax.set_ylabel("resident memory, MiB")
        ax.set_title("Server memory")
        fig.tight_layout()
        written.append(_save(fig, out / "memory.png"))
    return written


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write(results: dict, out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    table = markdown(results)
    (out / "results.md").write_text(table + "\n")
    return table


def readme_update(readme: Path, table: str, images: list[str]) -> bool:
    """Replace the README's results block (between its markers); False if it has none."""
    text = readme.read_text()
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        return False
    charts_md = "\n".join(f"![{Path(i).stem}]({i})" for i in images)
    block = f"{README_START}\n{table}\n{charts_md}\n{README_END}"
    readme.write_text(pattern.sub(lambda _: block, text))
    return True
