"""Benchmark the guideline rules: evaluate_frame on 1,000,000 rows, evaluate_person per person (with
and without the optional what-if and explanations) and evaluate_batch on 1,000 people.

Run from the repository root: ``.venv/bin/python -m bench.rules`` (``--rows`` / ``--people`` /
``--runs`` to shrink it). Writes its section of docs/PERFORMANCE.md via bench.report.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from bench.report import write_section
from shared.rules import RULE_VERSION, evaluate_batch, evaluate_frame, evaluate_person

# The previous system's risk step on 1M rows, row by row through the ORM, as its own published
# performance summary reports it (1,684 s, 594 rows/s). It included ORM reads/writes: not like for like.
OLD_SYSTEM_SECONDS = 1684


def synthetic_frame(n: int, seed: int = 20261129) -> pd.DataFrame:
    """Realistic-looking screening rows in the canonical input contract (~60% without lipids)."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(np.array([1, 2], dtype=np.int64), n, p=[0.53, 0.47])
    male = sex == 1
    age_group = rng.integers(5, 19, n, dtype=np.int64)
    height = np.where(male, rng.normal(170, 6, n), rng.normal(157, 6, n))
    bmi = rng.normal(24, 3.5, n)
    weight = bmi * (height / 100) ** 2
    height_bin = np.floor(height / 5) * 5  # published 5-unit bin floors
    weight_bin = np.floor(weight / 5) * 5
    waist = np.round(rng.normal(81, 9, n), 1)
    sbp = np.round(rng.normal(122, 15, n))
    dbp = np.round(rng.normal(76, 10, n))
    fpg = np.round(rng.lognormal(np.log(98), 0.18, n))
    tc = np.round(rng.normal(195, 38, n))
    tg = np.round(rng.lognormal(np.log(110), 0.5, n))
    hdl = np.round(rng.normal(55, 13, n)).clip(15)
    ldl = np.where(tg < 400, tc - hdl - np.round(tg / 5), np.nan)
    no_lipids = rng.random(n) < 0.6
    for arr in (tc, tg, hdl, ldl):
        arr[no_lipids] = np.nan
    hb = np.round(np.where(male, rng.normal(15, 1.2, n), rng.normal(13, 1.1, n)), 1)
    creat = np.round(np.where(male, rng.normal(0.95, 0.2, n), rng.normal(0.72, 0.15, n)).clip(0.3), 1)
    ast = np.round(rng.lognormal(np.log(23), 0.35, n))
    alt = np.round(rng.lognormal(np.log(21), 0.5, n))
    ggt = np.round(rng.lognormal(np.log(25), 0.6, n))
    urine = rng.choice(np.arange(1, 7, dtype=np.float64), n, p=[0.9, 0.05, 0.03, 0.01, 0.007, 0.003])
    smoking = rng.choice(np.array([1.0, 2.0, 3.0]), n, p=[0.6, 0.18, 0.22])
    drinking = (rng.random(n) < 0.5).astype(np.float64)
    df = pd.DataFrame(
        {
            "sex": sex,
            "age_group": age_group,
            "height_cm": height_bin,
            "weight_kg": weight_bin,
            "waist_cm": waist,
            "sbp": sbp,
            "dbp": dbp,
            "fasting_glucose": fpg,
            "total_cholesterol": tc,
            "triglycerides": tg,
            "hdl": hdl,
            "ldl": ldl,
            "hemoglobin": hb,
            "creatinine": creat,
            "ast": ast,
            "alt": alt,
            "ggt": ggt,
            "urine_protein": urine,
            "smoking": smoking,
            "drinking": drinking,
        }
    )
    # ~0.8% without blood/BP results (the 2020 release's missingness, docs/DATA.md), a few missing answers
    no_exam = rng.random(n) < 0.008
    df.loc[no_exam, ["sbp", "dbp", "fasting_glucose", "hemoglobin", "creatinine", "ast", "alt", "ggt"]] = np.nan
    df.loc[rng.random(n) < 0.012, "urine_protein"] = np.nan
    df.loc[rng.random(n) < 0.0004, "smoking"] = np.nan
    return df


def bench_frame(df: pd.DataFrame, runs: int) -> list[float]:
    """Wall seconds of evaluate_frame over the whole frame, one entry per run."""
    evaluate_frame(df.iloc[:1000])  # warm caches / imports
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        evaluate_frame(df)
        times.append(time.perf_counter() - t0)
    return times


def bench_person(people: list[dict], repeat: int = 3, include=("what_if", "explanations")) -> tuple[list[float], list[float]]:
    """Per-person microseconds of evaluate_person: (first call, best of ``repeat`` calls)."""
    for p in people[:200]:
        evaluate_person(p, include=include)
    first, best = [], []
    clock = time.perf_counter_ns
    for p in people:
        times = []
        for _ in range(repeat):
            t0 = clock()
            evaluate_person(p, include=include)
            times.append(clock() - t0)
        first.append(times[0] / 1000.0)
        best.append(min(times) / 1000.0)
    return first, best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--people", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-write", action="store_true", help="print only, do not touch docs/PERFORMANCE.md")
    args = ap.parse_args()

    df = synthetic_frame(args.rows)
    frame_times = bench_frame(df, args.runs)
    f_med = statistics.median(frame_times)

    people = df.iloc[: args.people].to_dict("records")
    first, best = bench_person(people)
    per = sorted(best)
    p_med = statistics.median(per)
    p95 = per[int(0.95 * (len(per) - 1))]
    first_med = statistics.median(first)
    n_whatif = statistics.mean(len(evaluate_person(p)["what_if"]) for p in people[:2000])
    lean = sorted(bench_person(people, include=())[1])
    lean_med, lean_p95 = statistics.median(lean), lean[int(0.95 * (len(lean) - 1))]
    batch_people = people[:1000]
    evaluate_batch(batch_people)
    batch_ms = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        evaluate_batch(batch_people)
        batch_ms.append((time.perf_counter() - t0) * 1000)

    body = f"""
Rule version {RULE_VERSION}. Synthetic rows from `bench.rules.synthetic_frame` (numpy; realistic
ranges, ~60% without a lipid panel, ~0.8% without blood/BP results).

| measure | figure | target |
|---|---|---|
| `evaluate_frame`, {args.rows:,} rows, median of {args.runs} runs | **{f_med:.3f} s** ({args.rows / f_med / 1e6:.2f} M rows/s; runs {", ".join(f"{t:.3f}" for t in frame_times)}) | ≤ 1.5 s |
| old system's risk step, row by row through the ORM (incl. DB I/O, so not like for like) | {OLD_SYSTEM_SECONDS:,} s | — |
| `evaluate_person` (all outputs incl. what-if and explanations), median over {len(per):,} people | **{p_med:.1f} µs** (best of 3 calls per person; p95 {p95:.1f} µs; median of single first calls {first_med:.1f} µs; {n_whatif:.1f} what-if entries on average) | ≤ 100 µs |
| `evaluate_person(include=())` (the `/simulate` default: no what-if, no explanations) | **{lean_med:.1f} µs** (p95 {lean_p95:.1f} µs) | — |
| `evaluate_batch`, {len(batch_people):,} people (numpy core + layout, no peers), median of {args.runs} runs | **{statistics.median(batch_ms):.1f} ms** | part of ≤ 50 ms per batch request |
"""
    if args.no_write:
        print(body)
    else:
        write_section("rules", "Guideline rules (shared/rules)", body, command=".venv/bin/python -m bench.rules")


if __name__ == "__main__":
    main()
