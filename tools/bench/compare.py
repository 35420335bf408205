#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# tools/bench/compare.py: compare mode of tools/run-benchmarks: two runs in (Google Benchmark JSON files or
# report folders), a table of time ratios B/A out, to catch regressions.
"""Compare two benchmark runs: python3 tools/bench/compare.py A B [--threshold 0.10] [--fail-on-regression]"""
from __future__ import annotations

import argparse
import math
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import report  # noqa: E402


def load(path: str) -> dict[str, dict]:
    """run name -> median entry, from one JSON file or every bench_*.json of a folder."""
    p = pathlib.Path(path)
    files = sorted(p.glob("*.json")) if p.is_dir() else [p]
    out = {}
    for f in files:
        if f.name == "run.json":
            continue
        data = report.load_json_tolerant(f)
        for b, _, _ in report.medians(data.get("benchmarks", [])):
            if not b.get("error_occurred"):
                out[b.get("run_name", b["name"])] = b
    return out


def main(a: str, b: str, threshold: float = 0.10, fail: bool = False) -> int:
    A, B = load(a), load(b)
    common = [n for n in A if n in B]
    if not common:
        print(f"no benchmark in common between {a} ({len(A)} results) and {b} ({len(B)} results)")
        return 1
    w = max(len(n) for n in common)
    print(f"A = {a}\nB = {b}\ntime ratio B/A: < 1 means B is faster; flagged beyond 1 +/- {threshold:.2f}\n")
    print(f"{'benchmark':<{w}}  {'A ms':>10}  {'B ms':>10}  {'B/A':>6}  {'GFLOP/s A':>9}  {'GFLOP/s B':>9}")
    logs, worse, better = [], [], []
    for n in common:
        ta = A[n]["real_time"] * report._unit_ms(A[n])
        tb = B[n]["real_time"] * report._unit_ms(B[n])
        if ta <= 0 or tb <= 0:
            continue
        r = tb / ta
        logs.append(math.log(r))
        flag = ""
        if r > 1 + threshold:
            flag, _ = "  SLOWER", worse.append(n)
        elif r < 1 - threshold:
            flag, _ = "  faster", better.append(n)
        ga = A[n].get("GFLOP/s")
        gb = B[n].get("GFLOP/s")
        print(f"{n:<{w}}  {ta:10.3f}  {tb:10.3f}  {r:6.3f}  {report.fmt_num(ga):>9}  {report.fmt_num(gb):>9}{flag}")
    gm = math.exp(sum(logs) / len(logs)) if logs else float("nan")
    print(f"\n{len(common)} in common (only in A: {len(A) - len(common)}, only in B: {len(B) - len(common)}); "
          f"geometric mean B/A = {gm:.3f}; {len(worse)} slower, {len(better)} faster beyond {threshold:.0%}")
    return 2 if (fail and worse) else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--threshold", type=float, default=0.10)
    ap.add_argument("--fail-on-regression", action="store_true")
    ns = ap.parse_args()
    sys.exit(main(ns.a, ns.b, ns.threshold, ns.fail_on_regression))
