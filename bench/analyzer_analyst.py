"""Analyzer benchmark: the built-in analyst's answer time on a large session, in-process.

Run from the project root: `.venv/bin/python bench/analyzer_analyst.py [--size-mb 1024] [--rounds 3]`.

The session's DuckDB file is made once (the generated trades CSV of bench/analyzer_upload.py, loaded and
profiled by analyzer.ingest exactly as the processing job does) under var/bench_analyzer/.
Figures, for a dozen everyday questions, each asked `--rounds` times:
  plan     reading the question and planning its tool calls (no query): p50 / p95
  answer   the whole answer in-process: AgentLoop with the built-in analyst, its sandboxed queries, the chart
           (built and validated) and the summary: p50 / p95 (target p95 < 300 ms)
  anchor   the same questions' SQL run straight on a plain DuckDB connection to the same file: p50 / p95
  ratio    answer p95 ÷ anchor p95 (what the analyst adds around DuckDB)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
DATA_DIR = ROOT / "var" / "bench_analyzer"

QUESTIONS = [
    "How many rows are there?",
    "how many buy trades have a qty over 400?",
    "average price by symbol",
    "and by venue?",
    "only sells",
    "total qty per venue",
    "which symbol has the highest total qty?",
    "top 5 trades by price",
    "what is the maximum qty?",
    "what share of trades are buys?",
    "distribution of price",
    "total qty per month",
    "average price by day of the week",
    "correlation between qty and price",
    "missing values per column",
]


def p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def session_file(size_mb: int):
    from analyzer import ingest
    from analyzer_upload import make_csv

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    csv = DATA_DIR / f"trades_{size_mb}mb.csv"
    if not csv.exists():
        print(f"generating {csv} …", flush=True)
        make_csv(csv, size_mb)
    dst = DATA_DIR / f"analyst_{size_mb}mb.duckdb"
    if dst.exists():
        dst.unlink()
    t = time.monotonic()
    result = ingest.upload_ingest(src=str(csv), filename="trades.csv", data_dst=str(dst))
    print(f"session {csv.name}: {result.row_count:,} rows loaded and profiled in {time.monotonic() - t:.1f} s")
    return dst, result


class Sink:
    def __init__(self):
        self.events: list[tuple[str, dict]] = []

    def emit(self, kind, data, rows_kept=None):
        self.events.append((kind, data))

    def should_stop(self):
        return False


def main() -> None:
    import django

    django.setup()
    import duckdb

    from analyzer.agent.builtin import BuiltinProvider
    from analyzer.agent.context import DataContext
    from analyzer.agent.loop import AgentLoop

    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    path, result = session_file(args.size_mb)
    context = DataContext(filename="trades.csv", data_path=str(path), row_count=result.row_count,
                          columns=result.columns, profile=result.profile, sample_rows=[], detection={})
    plan_s, answer_s, anchor_s, kinds = [], [], [], {}
    con = duckdb.connect(str(path), read_only=True)
    for _ in range(args.rounds):
        history: list[dict] = []
        for question in QUESTIONS:
            provider = BuiltinProvider(context=context)
            earlier = [m["content"] for m in history if m["role"] == "user"]
            t = time.perf_counter()
            plan = provider.decide(question, earlier)
            plan_s.append(time.perf_counter() - t)
            sqls = [a["sql"] for name, a in plan.calls if name in ("generate_query", "create_plot")]
            t = time.perf_counter()
            for sql in dict.fromkeys(sqls):
                con.execute(sql).fetchmany(10_000)
            anchor_s.append(time.perf_counter() - t)
            sink = Sink()
            messages = [{"role": "system", "content": ""}, *history, {"role": "user", "content": question}]
            t = time.perf_counter()
            AgentLoop(provider=BuiltinProvider(context=context), context=context, sink=sink).run(messages=messages)
            answer_s.append(time.perf_counter() - t)
            kinds[question] = [k for k, _ in sink.events]
            texts = " ".join(d.get("text", "") for k, d in sink.events if k == "text")
            history += [{"role": "user", "content": question}, {"role": "assistant", "content": texts}]
    con.close()
    for question in QUESTIONS:
        print(f"  {question!r}: {kinds[question]}")
    ms = 1000
    print(f"plan    p50 {p(plan_s, .5) * ms:.2f} ms, p95 {p(plan_s, .95) * ms:.2f} ms ({len(plan_s)} questions)")
    print(f"anchor  plain DuckDB, same SQL: p50 {p(anchor_s, .5) * ms:.0f} ms, p95 {p(anchor_s, .95) * ms:.0f} ms")
    answer_p95 = p(answer_s, .95)
    print(f"answer  built-in analyst in-process: p50 {p(answer_s, .5) * ms:.0f} ms, p95 {answer_p95 * ms:.0f} ms "
          f"(target p95 < 300 ms) {'OK' if answer_p95 < 0.3 else 'OVER'}; mean {statistics.mean(answer_s) * ms:.0f} ms")
    print(f"ratio   answer p95 / anchor p95 = {answer_p95 / max(p(anchor_s, .95), 1e-9):.2f}")


if __name__ == "__main__":
    main()
