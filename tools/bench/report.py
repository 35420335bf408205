#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# tools/bench/report.py: turns a run folder of Google Benchmark JSON files (reports/<timestamp>/) into
# report.md and report.html with a summary table, full tables and PNG plots (matplotlib, Agg).
"""Build the seqmix benchmark report: python3 tools/bench/report.py reports/<timestamp>"""
from __future__ import annotations

import html
import json
import math
import pathlib
import re
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass, field

FORMS = ("prefill", "chunk", "recurrent", "decode", "forward", "baseline")
FORM_TOKENS = {
    "chunk": "chunk", "chunked": "chunk", "chunkwise": "chunk", "parallel": "chunk",
    "recurrent": "recurrent", "recurrence": "recurrent", "fused_recurrent": "recurrent",
    "decode": "decode", "step": "decode", "prefill": "prefill",
}
BASELINE_TOKENS = ("reference", "naive", "baseline")
PREFERRED_ORDER = ("calibration", "flash_attention", "linear_attention", "delta_rules", "ssm_scan")
ATTENTION_PROGRAMS = ("flash_attention", "attention", "softmax_attention")


# ------------------------------------------------------------------------------------------------ data
@dataclass
class Rec:
    program: str            # bench_<family> file stem without "bench_"
    name: str               # Google Benchmark run name
    op: str                 # BM_<op> without "BM_"
    op_key: str             # op without its form words (gla_chunk, gla_recurrent -> gla)
    form: str
    shape: str
    T: int
    threads: int
    ms: float               # median real time per iteration
    gflops: float | None
    gbs: float | None
    tok_s: float | None
    reps: int = 1
    cv: float | None = None  # coefficient of variation across repetitions, when reported
    roof: float | None = None
    bound: str = ""

    @property
    def us_per_token(self) -> float | None:
        if self.tok_s and self.tok_s > 0:
            return 1e6 / self.tok_s
        if self.T > 0 and self.form != "decode":
            return self.ms * 1e3 / self.T
        return None

    @property
    def series(self) -> tuple:
        return (self.program, self.op, self.form, self.shape)


@dataclass
class Run:
    folder: pathlib.Path
    recs: list[Rec] = field(default_factory=list)
    peak_gflops: dict[int, float] = field(default_factory=dict)
    peak_gbs: dict[int, float] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    context: dict = field(default_factory=dict)
    programs: list[str] = field(default_factory=list)
    calib_wall: dict = field(default_factory=dict)
    calib_from_cpu: bool = False


def _unit_ms(b: dict) -> float:
    return {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}.get(b.get("time_unit", "ns"), 1e-6)


def load_json_tolerant(path: pathlib.Path) -> dict:
    """Loads a Google Benchmark JSON file; a file cut short (killed run) is repaired at its last full entry."""
    text = path.read_text(errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    pos = len(text)
    for _ in range(400):
        pos = text.rfind("}", 0, pos)
        if pos < 0:
            break
        try:
            return json.loads(text[: pos + 1] + "]}")
        except json.JSONDecodeError:
            continue
    return {"context": {}, "benchmarks": []}


def medians(benchmarks: list[dict]) -> list[tuple[dict, int, float | None]]:
    """One entry per run name: the 'median' aggregate when present, else the median of the repetitions."""
    by_run: dict[str, list[dict]] = defaultdict(list)
    order: list[str] = []
    for b in benchmarks:
        rn = b.get("run_name", b["name"])
        if rn not in by_run:
            order.append(rn)
        by_run[rn].append(b)
    out = []
    for rn in order:
        bs = by_run[rn]
        med = [b for b in bs if b.get("run_type") == "aggregate" and b.get("aggregate_name") == "median"]
        cvb = [b for b in bs if b.get("run_type") == "aggregate" and b.get("aggregate_name") == "cv"]
        cv = cvb[0]["real_time"] if cvb else None
        if med:
            out.append((med[0], int(med[0].get("repetitions", 1)), cv))
            continue
        its = [b for b in bs if b.get("run_type", "iteration") == "iteration"]
        if not its:
            continue
        if len(its) == 1:
            out.append((its[0], 1, None))
            continue
        m = dict(its[0])
        for k, v in its[0].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("repetition_index",):
                m[k] = statistics.median(float(b.get(k, v)) for b in its)
        times = [b["real_time"] for b in its]
        cv = statistics.pstdev(times) / statistics.mean(times) if statistics.mean(times) > 0 else None
        out.append((m, len(its), cv))
    return out


def parse_args_from_name(name: str) -> dict[str, str]:
    """Named args ("T:2048") by name; unnamed ones as arg0, arg1, ..."""
    args = {}
    for i, part in enumerate(name.split("/")[1:]):
        if ":" in part:
            k, v = part.split(":", 1)
            args[k] = v
        elif part.isdigit():
            args[f"arg{i}"] = part
    return args


def op_name(name: str) -> str:
    """BM_<op> from a run name, with BENCHMARK_CAPTURE's test-case name appended: "BM_gdn/chunk/16/..." ->
    "gdn_chunk"; "bench_decode/BM_gla_decode/threads:1" -> "gla_decode" (a capture named BM_...)."""
    parts = [p for p in name.split("/") if ":" not in p and not p.lstrip("-").isdigit()
             and p not in ("real_time", "process_time", "manual_time")]
    starts = [i for i, p in enumerate(parts) if p.startswith("BM_")]
    if starts:
        parts = parts[starts[0]:]
    return "_".join(parts).removeprefix("BM_") or name.split("/")[0]


def infer_form(op: str, label_form: str | None) -> str:
    if label_form:
        return label_form
    toks = op.lower().split("_")
    if any(b in op.lower() for b in BASELINE_TOKENS):
        return "baseline"
    for t in toks:
        f = FORM_TOKENS.get(t)
        if f:
            return f
    return "forward"


def op_key_of(op: str, program: str = "") -> str:
    toks = [t for t in op.split("_") if t.lower() not in FORM_TOKENS and t.lower() != "simd"]
    return "_".join(toks) or program or op


def load_run(folder: pathlib.Path) -> Run:
    run = Run(folder)
    mf = folder / "run.json"
    if mf.exists():
        run.manifest = json.loads(mf.read_text())
    pref = {n: i for i, n in enumerate(PREFERRED_ORDER)}
    files = sorted(folder.glob("bench_*.json"), key=lambda p: (pref.get(p.stem.removeprefix("bench_"), 99), p.stem))
    for f in files:
        prog = f.stem.removeprefix("bench_")
        data = load_json_tolerant(f)
        run.context = run.context or data.get("context", {})
        run.programs.append(prog)
        bench = data.get("benchmarks", [])
        if prog == "calibration":
            calibrate(run, bench)
            continue
        for b, reps, cv in medians(bench):
            if b.get("error_occurred"):
                continue
            name = b.get("run_name", b["name"])
            args = parse_args_from_name(name)
            op = op_name(name)
            if op.startswith(prog + "_") and len(op) > len(prog) + 1:
                op = op[len(prog) + 1:]  # BM_<family>_<variant>: the family is the program already
            label = b.get("label", "") or ""
            lab = dict(kv.split("=", 1) for kv in label.split(";") if "=" in kv)
            form = infer_form(op, lab.get("form"))
            T = int(b.get("T") or 0) or int(args.get("T", 0) or 0)
            t_arg = "T"
            if T == 0:
                for k in ("L", "seq", "seq_len", "tq", "Tq", "tk", "Tk", "Tkv", "len", "n_ctx", "ctx", "arg0"):
                    if k in args:
                        T, t_arg = int(args[k]), k
                        break
            threads = int(b.get("n_threads") or 0) or int(args.get("threads", 0) or 0) or int(b.get("threads", 1))
            shape = lab.get("shape") or ", ".join(f"{k}={v}" for k, v in args.items()
                                                  if k not in (t_arg, "threads", "real_time", "process_time"))
            rec = Rec(program=prog, name=name, op=op, op_key=op_key_of(op, prog), form=form, shape=shape, T=T,
                      threads=threads, ms=b["real_time"] * _unit_ms(b), gflops=b.get("GFLOP/s"),
                      gbs=b.get("GB/s"), tok_s=b.get("tokens/s"), reps=reps, cv=cv)
            run.recs.append(rec)
    for r in run.recs:
        roofline(run, r)
    return run


def calibrate(run: Run, bench: list[dict]) -> None:
    """The machine's ceilings from bench_calibration: the best of every repetition (load only lowers a
    ceiling). On a busy machine wall-clock rates understate the hardware, so CPU time is used too: FMA peak =
    threads x flops / process CPU time; bandwidth from CPU time at 1 thread only (threads share DRAM), and the
    all-thread bandwidth is at least the 1-thread one."""
    wall_f: dict[int, float] = {}
    cpu_f: dict[int, float] = {}
    wall_b: dict[int, float] = {}
    cpu_b: dict[int, float] = {}
    for b in bench:
        if b.get("run_type", "iteration") != "iteration" or b.get("error_occurred"):
            continue
        name = b.get("run_name", b["name"])
        n = int(b.get("n_threads") or 0) or int(parse_args_from_name(name).get("threads", 1))
        r, c = b.get("real_time", 0), b.get("cpu_time", 0)
        if "fma" in name and b.get("GFLOP/s"):
            wall_f[n] = max(wall_f.get(n, 0), b["GFLOP/s"])
            if c > 0:
                cpu_f[n] = max(cpu_f.get(n, 0), b["GFLOP/s"] * r / c * n)
        elif "triad" in name and b.get("GB/s"):
            wall_b[n] = max(wall_b.get(n, 0), b["GB/s"])
            if c > 0 and n == 1:
                cpu_b[n] = max(cpu_b.get(n, 0), b["GB/s"] * r / c)
    for n in wall_f:
        run.peak_gflops[n] = max(wall_f[n], cpu_f.get(n, 0))
    for n in sorted(wall_b):
        run.peak_gbs[n] = max(wall_b[n], cpu_b.get(n, 0), run.peak_gbs.get(1, 0) if n > 1 else 0)
    run.calib_wall = {n: (wall_f.get(n), wall_b.get(n)) for n in set(wall_f) | set(wall_b)}
    run.calib_from_cpu = any(run.peak_gflops[n] > 1.15 * wall_f[n] for n in wall_f) or any(
        run.peak_gbs[n] > 1.15 * wall_b[n] for n in wall_b)


def _calib(table: dict[int, float], threads: int) -> float | None:
    if not table:
        return None
    if threads in table:
        return table[threads]
    lower = [t for t in table if t <= threads]
    t = max(lower) if lower else min(table)
    return table[t]


def roofline(run: Run, r: Rec) -> None:
    pf, bw = _calib(run.peak_gflops, r.threads), _calib(run.peak_gbs, r.threads)
    g, b = r.gflops, r.gbs
    if g and b and pf and bw:
        ai = g / b
        attainable = min(pf, ai * bw)
        r.roof = g / attainable
        r.bound = "memory" if ai * bw < pf else "compute"
    elif g and pf:
        r.roof, r.bound = g / pf, "compute"
    elif b and bw:
        r.roof, r.bound = b / bw, "memory"


# ------------------------------------------------------------------------------------------------ analysis
def fmt_num(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    if mag >= 6:
        return f"{x / 1e6:.{max(0, digits - 1 - (mag - 6))}f}M"
    if mag >= digits:
        return f"{x:,.0f}"
    return f"{x:.{max(0, digits - 1 - mag)}f}"


def fmt_t(t: float) -> str:
    if t >= 1024 and abs(t / 1024 - round(t / 1024)) < 1e-9:
        return f"{int(round(t / 1024))}k"
    if t >= 1000:
        return f"{t / 1024:.1f}k"
    return f"{t:.0f}"


def fmt_pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def max_threads(run: Run) -> int:
    return max((r.threads for r in run.recs), default=1)


def series_map(recs: list[Rec]) -> dict[tuple, dict[int, dict[int, Rec]]]:
    """series -> threads -> T -> record"""
    m: dict[tuple, dict[int, dict[int, Rec]]] = defaultdict(lambda: defaultdict(dict))
    for r in recs:
        m[r.series][r.threads][r.T] = r
    return m


def curve(points: dict[int, Rec], metric=lambda r: r.us_per_token) -> tuple[list[int], list[float]]:
    ts = sorted(t for t, r in points.items() if t > 0 and metric(r))
    return ts, [metric(points[t]) for t in ts]


def crossover(ta: list[int], ya: list[float], tb: list[int], yb: list[float]) -> tuple[str, float | None]:
    """Where curve b drops below curve a (log-log interpolation). Returns (text, T or None)."""
    common = sorted(set(ta) & set(tb))
    if len(common) < 1:
        return "no common T", None
    da = dict(zip(ta, ya))
    db = dict(zip(tb, yb))
    d = [math.log(db[t]) - math.log(da[t]) for t in common]  # < 0: b faster
    if all(x < 0 for x in d):
        return f"at every T measured (from {fmt_t(common[0])})", None
    if all(x >= 0 for x in d):
        return f"not up to T = {fmt_t(common[-1])}", None
    # last sign change from slower to faster
    for i in range(len(common) - 1, 0, -1):
        if d[i] < 0 <= d[i - 1]:
            l0, l1 = math.log2(common[i - 1]), math.log2(common[i])
            f = d[i - 1] / (d[i - 1] - d[i])
            t = 2 ** (l0 + f * (l1 - l0))
            return f"T ~ {fmt_t(t)}", t
    return "crosses back and forth", None


def is_attention(program: str, op: str) -> bool:
    return program in ATTENTION_PROGRAMS or ("attention" in op and "linear" not in op and program != "linear_attention")


@dataclass
class Summary:
    rows: list[Rec]               # one per series, at the summary T, top thread count
    one: dict[tuple, Rec]         # series -> same T at 1 thread
    speedup: dict[tuple, float]


def summarize(run: Run) -> Summary:
    sm = series_map(run.recs)
    top = max_threads(run)
    rows, one, sp = [], {}, {}
    for s, by_th in sm.items():
        ths = sorted(by_th)
        hi = top if top in by_th else ths[-1]
        common = sorted(set(by_th[hi]) & set(by_th.get(1, {}))) if hi != 1 else sorted(by_th[hi])
        t = common[-1] if common else max(by_th[hi])
        r = by_th[hi][t]
        rows.append(r)
        if 1 in by_th and t in by_th[1]:
            one[s] = by_th[1][t]
            if hi != 1 and r.ms > 0:
                sp[s] = one[s].ms / r.ms
    order = {p: i for i, p in enumerate(run.programs)}
    rows.sort(key=lambda r: (order.get(r.program, 99), r.op_key, FORMS.index(r.form) if r.form in FORMS else 9, r.op))
    return Summary(rows, one, sp)


def best_curves(run: Run, forms: tuple[str, ...], threads: int) -> dict[tuple, tuple[list[int], list[float], dict[int, str]]]:
    """Per (program, op_key, shape): the fastest of the given forms at each T (time per token), at `threads`
    (or at 1 thread for ops measured only there)."""
    acc: dict[tuple, dict[int, dict[int, tuple[float, str]]]] = defaultdict(lambda: defaultdict(dict))
    for r in run.recs:
        if r.form not in forms or not r.us_per_token or r.T <= 0 or r.threads not in (threads, 1):
            continue
        k = (r.program, r.op_key, r.shape)
        cur = acc[k][r.threads].get(r.T)
        if cur is None or r.us_per_token < cur[0]:
            acc[k][r.threads][r.T] = (r.us_per_token, r.form)
    out = {}
    for k, by_th in acc.items():
        d = by_th.get(threads) or by_th.get(1)
        if threads not in by_th and threads != 1:
            k = (k[0], k[1], k[2] + ", 1 thread only")
        ts = sorted(d)
        out[k] = (ts, [d[t][0] for t in ts], {t: d[t][1] for t in ts})
    return out


# ------------------------------------------------------------------------------------------------ plots
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "font.size": 9,
                         "axes.titlesize": 10, "legend.fontsize": 7})
    return plt


def _log2_x(ax, ts):
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    if ts:
        ticks = sorted(set(ts))
        ax.set_xticks(ticks)
        ax.set_xticklabels([fmt_t(t) for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: fmt_num(y, 2)))
    ax.yaxis.set_minor_formatter(NullFormatter())


def plot_time_per_token(run: Run, path: pathlib.Path) -> bool:
    """Each family: every op and form swept over T (two points or more), all threads solid, 1 thread dashed."""
    plt = _plt()
    recs = [r for r in run.recs if r.us_per_token and r.T >= 64 and r.form != "decode"]
    sm = series_map(recs)
    top = max_threads(run)
    swept = {s for s, by_th in sm.items() if any(len(pts) >= 2 for pts in by_th.values())}
    progs = [p for p in run.programs if any(s[0] == p for s in swept)]
    if not progs:
        return False
    ncol = min(3, len(progs))
    nrow = math.ceil(len(progs) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.6 * ncol, 6.2 * nrow), squeeze=False)
    for ax, prog in zip(axes.flat, progs):
        ss = [s for s in sm if s[0] == prog and s in swept]
        allts = []
        for i, s in enumerate(ss):
            color = f"C{i % 10}"
            for th, style in ((top, "-"), (1, "--")):
                if th not in sm[s] or (th == 1 and top == 1 and style == "--"):
                    continue
                ts, ys = curve(sm[s][th])
                if not ts:
                    continue
                allts += ts
                label = f"{s[1]} [{s[2]}] {s[3]}" if style == "-" or top not in sm[s] else None
                ax.plot(ts, ys, style, color=color, marker="o" if style == "-" else None, ms=3,
                        lw=1.4 if style == "-" else 1, label=label, alpha=1 if style == "-" else 0.55)
        _log2_x(ax, allts)
        ax.set_title(prog)
        ax.set_xlabel("T (tokens)")
        ax.set_ylabel("time per token (us)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=1, fontsize=7, frameon=False)
    for ax in list(axes.flat)[len(progs):]:
        ax.axis("off")
    fig.suptitle(f"Time per token vs T, every op and form at its model shape "
                 f"(solid: {top} threads, dashed: 1 thread)" if top > 1 else "Time per token vs T, 1 thread")
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return True


def attention_curve(cur: dict) -> tuple | None:
    att = {k: v for k, v in cur.items() if is_attention(k[0], k[1])}
    if not att:
        return None
    akey = max(att, key=lambda k: (len(att[k][0]), -sum(att[k][1])))
    return akey, att[akey]


def softmax_vs_linear(run: Run, forms: tuple[str, ...], threads: int, min_t: int = 1):
    """(attention key, attention curve, [(op key, curve, crossover text, T)]) at `threads`. In decode, an op
    measured at one T only (a recurrent state: cost independent of the context) is drawn flat."""
    cur = best_curves(run, forms, threads)
    cur = {k: ([t for t in v[0] if t >= min_t], [y for t, y in zip(v[0], v[1]) if t >= min_t], v[2])
           for k, v in cur.items()}
    cur = {k: v for k, v in cur.items() if v[0]}
    ac = attention_curve(cur)
    res = []
    for k, v in cur.items():
        if is_attention(k[0], k[1]):
            continue
        ts, ys = v[0], v[1]
        if "decode" in forms and ac and len(set(ts)) == 1:
            ts, ys = list(ac[1][0]), [ys[0]] * len(ac[1][0])
            k = (k[0], k[1], k[2] + ", flat: state size fixed")
        if ac is None:
            res.append((k, (ts, ys), "softmax attention not benchmarked", None))
        else:
            text, t = crossover(ac[1][0], ac[1][1], ts, ys)
            res.append((k, (ts, ys), text, t))
    return (ac[0] if ac else None), (ac[1] if ac else None), res


def plot_overview(run: Run, path: pathlib.Path, forms: tuple[str, ...], title: str) -> dict:
    """One panel per family (columns) and thread count (rows), softmax attention drawn in every panel, the
    crossover T of each op marked. Returns {threads: [(key, curve, text, T)]}."""
    top = max_threads(run)
    rows = [1, top] if top > 1 else [1]
    min_t = 1 if "decode" in forms else 64
    per_row = {th: softmax_vs_linear(run, forms, th, min_t) for th in rows}
    fams = [p for p in run.programs if any(k[0] == p for th in rows for k, *_ in per_row[th][2])]
    if not fams:
        return {}
    plt = _plt()
    fig, axes = plt.subplots(len(rows), len(fams), figsize=(4.6 * len(fams), 4.4 * len(rows)), squeeze=False)
    for ri, th in enumerate(rows):
        akey, ac, res = per_row[th]
        for ci, fam in enumerate(fams):
            ax = axes[ri][ci]
            allts = []
            if ac is not None:
                ax.plot(ac[0], ac[1], "-o", color="black", lw=2.2, ms=4, label=f"softmax attention {akey[1]} ({akey[2]})")
                allts += ac[0]
            lines = []
            mine = [r for r in res if r[0][0] == fam]
            for i, (k, v, text, t) in enumerate(mine):
                color = f"C{i % 10}"
                ax.plot(v[0], v[1], "-o", color=color, ms=3, lw=1.4, label=f"{k[1]} ({k[2]})")
                allts += v[0]
                if t is not None and ac is not None:
                    y = math.exp(_interp_log(ac[0], [math.log(y) for y in ac[1]], t))
                    ax.plot([t], [y], marker="X", color=color, ms=9, mec="black", zorder=5)
                    ax.annotate(f"T~{fmt_t(t)}", (t, y), textcoords="offset points", xytext=(4, -12), color=color,
                                fontsize=8, fontweight="bold")
                lines.append(f"{k[1]}: {text}")
            _log2_x(ax, allts)
            ax.set_title(f"{fam}, {th} thread{'s' if th > 1 else ''}")
            ax.set_xlabel("context length T (tokens)" if "decode" in forms else "T (tokens)")
            ax.set_ylabel("time per token (us)")
            ax.legend(loc="upper left", fontsize=6.5)
            if ac is not None and lines:
                box = "overtakes softmax attention:\n" + "\n".join(lines[:8])
            else:
                box = "softmax attention not benchmarked yet: no crossover"
            ax.text(0.0, -0.2, box, transform=ax.transAxes, ha="left", va="top", fontsize=7,
                    bbox=dict(boxstyle="round", fc="#fffbe6", ec="0.7"))
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return {th: per_row[th][2] for th in rows}


def _interp_log(ts, logys, t):
    lt = math.log2(t)
    xs = [math.log2(x) for x in ts]
    for i in range(len(xs) - 1):
        if xs[i] <= lt <= xs[i + 1]:
            f = (lt - xs[i]) / (xs[i + 1] - xs[i]) if xs[i + 1] > xs[i] else 0
            return logys[i] + f * (logys[i + 1] - logys[i])
    return logys[-1] if lt > xs[-1] else logys[0]


def chunk_recurrent_pairs(run: Run, threads: int):
    by: dict[tuple, dict[str, dict[int, Rec]]] = defaultdict(lambda: defaultdict(dict))
    for r in run.recs:
        if r.form in ("chunk", "recurrent") and r.threads == threads and r.us_per_token and r.T >= 64:
            by[(r.program, r.op_key, r.shape)][r.form][r.T] = r
    out = []
    for k, d in by.items():
        if "chunk" in d and "recurrent" in d:
            tc, yc = curve(d["chunk"])
            tr, yr = curve(d["recurrent"])
            text, t = crossover(tr, yr, tc, yc)
            out.append((k, (tc, yc), (tr, yr), text, t))
    return out


def plot_chunk_recurrent(run: Run, path: pathlib.Path) -> list:
    top = max_threads(run)
    pairs = chunk_recurrent_pairs(run, top)
    pairs1 = {p[0]: p for p in chunk_recurrent_pairs(run, 1)} if top > 1 else {}
    if not pairs:
        return []
    plt = _plt()
    ncol = min(4, len(pairs))
    nrow = math.ceil(len(pairs) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.5 * nrow), squeeze=False)
    for ax, (k, c, rr, text, t) in zip(axes.flat, pairs):
        ax.plot(c[0], c[1], "-o", color="C0", ms=3, label=f"chunk, {top}t")
        ax.plot(rr[0], rr[1], "-o", color="C3", ms=3, label=f"recurrent, {top}t")
        if k in pairs1:
            p1 = pairs1[k]
            ax.plot(p1[1][0], p1[1][1], "--", color="C0", alpha=0.5, label="chunk, 1t")
            ax.plot(p1[2][0], p1[2][1], "--", color="C3", alpha=0.5, label="recurrent, 1t")
        if t is not None:
            ax.axvline(t, color="k", ls=":", lw=1)
        ax.text(0.02, 0.02, f"chunk faster: {text}", transform=ax.transAxes, fontsize=8, fontweight="bold",
                bbox=dict(boxstyle="round", fc="white", ec="0.7", alpha=0.9))
        _log2_x(ax, c[0] + rr[0])
        ax.set_title(f"{k[0]}/{k[1]}  ({k[2]})", fontsize=8.5)
        ax.set_xlabel("T (tokens)")
        ax.set_ylabel("time per token (us)")
        ax.legend(loc="upper right")
    for ax in list(axes.flat)[len(pairs):]:
        ax.axis("off")
    fig.suptitle("Chunk vs recurrent form\n(crossover: where the chunk form becomes faster)" if ncol == 1 else
                 "Chunk vs recurrent form (crossover: where the chunk form becomes faster)")
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return pairs


def plot_roofline(run: Run, summ: Summary, path: pathlib.Path) -> bool:
    rows = [r for r in summ.rows if r.roof is not None and r.form != "baseline"]
    if not rows:
        return False
    plt = _plt()
    top = max_threads(run)
    labels = [f"{r.program}/{r.op} [{r.form}] {r.shape} T={fmt_t(r.T)}"[:90] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(rows) + 1.4))
    y = list(range(len(rows)))
    h = 0.38
    one = [summ.one.get(r.series) for r in rows]
    ax.barh([i + h / 2 for i in y], [o.roof if o and o.roof else 0 for o in one], h, color="C1", label="1 thread")
    if top > 1:
        ax.barh([i - h / 2 for i in y], [r.roof for r in rows], h, color="C0", label=f"{top} threads")
    hi = max([r.roof for r in rows] + [o.roof for o in one if o and o.roof])
    for i, r in enumerate(rows):
        x = min(max(r.roof, (one[i].roof or 0) if one[i] else 0), 2.2 if hi > 2.5 else 1e9)
        txt = (f"1t {fmt_pct(one[i].roof)} / " if top > 1 and one[i] and one[i].roof else "") + fmt_pct(r.roof)
        ax.text(x + 0.01, i, f"{txt} ({r.bound})", va="center", fontsize=7)
    ax.axvline(1.0, color="k", lw=1)
    if hi > 2.5:  # cache-resident memory-bound ops can beat DRAM bandwidth many times: clip, the label says it
        ax.set_xlim(0, 2.5)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("fraction of the roofline: achieved / min(FMA peak, intensity x STREAM bandwidth)")
    ax.set_title("Roofline fraction per op (largest T measured; calibration from bench_calibration)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return True


def plot_roofline_chart(run: Run, summ: Summary, path: pathlib.Path) -> bool:
    top = max_threads(run)
    rows = [r for r in summ.rows if r.gflops and r.gbs]
    pf, bw = _calib(run.peak_gflops, top), _calib(run.peak_gbs, top)
    if not rows or not pf or not bw:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    ais = [r.gflops / r.gbs for r in rows]
    lo, hi = min(ais + [pf / bw]) / 4, max(ais + [pf / bw]) * 4
    xs = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    for th, ls in ((top, "-"), (1, "--")):
        p, b = _calib(run.peak_gflops, th), _calib(run.peak_gbs, th)
        if p and b and (th == top or top > 1):
            ax.plot(xs, [min(p, x * b) for x in xs], ls, color="k", lw=1.2,
                    label=f"roof, {th} thread{'s' if th > 1 else ''}: {p:.0f} GFLOP/s, {b:.1f} GB/s")
    for i, r in enumerate(rows):
        ax.plot([r.gflops / r.gbs], [r.gflops], "o", color=f"C{i % 10}", ms=6, label=f"{r.op} [{r.form}] T={fmt_t(r.T)}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP / byte)")
    ax.set_ylabel("GFLOP/s")
    ax.set_title(f"Roofline ({top} threads)")
    ax.legend(fontsize=6.5, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return True


def plot_scaling(run: Run, summ: Summary, path: pathlib.Path) -> bool:
    top = max_threads(run)
    rows = [r for r in summ.rows if r.series in summ.speedup]
    if top <= 1 or not rows:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 0.3 * len(rows) + 1.4))
    sp = [summ.speedup[r.series] for r in rows]
    y = list(range(len(rows)))
    colors = ["C2" if s >= 0.9 * top else ("C1" if s >= 0.6 * top else "C3") for s in sp]
    ax.barh(y, sp, color=colors)
    for i, s in enumerate(sp):
        ax.text(s + 0.02, i, f"{s:.2f}x", va="center", fontsize=7)
    ax.axvline(top, color="k", lw=1, label=f"ideal {top}x")
    ax.axvline(0.9 * top, color="k", ls="--", lw=1, label=f"target {0.9 * top:.1f}x")
    ax.axvline(1.0, color="0.5", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{r.program}/{r.op} [{r.form}] {r.shape} T={fmt_t(r.T)}"[:90] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"speedup, {top} threads over 1 thread (same T)")
    ax.set_title("Thread scaling")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return True


# ------------------------------------------------------------------------------------------------ document
class Doc:
    """A tiny document model rendered to both Markdown and HTML."""

    def __init__(self):
        self.blocks: list[tuple] = []

    def h(self, level, text):
        self.blocks.append(("h", level, text))

    def p(self, text):
        self.blocks.append(("p", text))

    def ul(self, items):
        self.blocks.append(("ul", items))

    def table(self, head, rows, align=None):
        self.blocks.append(("table", head, rows, align))

    def img(self, src, alt):
        self.blocks.append(("img", src, alt))

    def details(self, summary, items):
        self.blocks.append(("details", summary, items))

    def md(self) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2] + "\n")
            elif b[0] == "p":
                out.append(b[1] + "\n")
            elif b[0] == "ul":
                out.append("\n".join(f"- {i}" for i in b[1]) + "\n")
            elif b[0] == "table":
                head, rows, align = b[1], b[2], b[3] or ["r"] * len(b[1])
                esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
                out.append("| " + " | ".join(esc(h) for h in head) + " |")
                out.append("|" + "|".join("---:" if a == "r" else ":---" for a in align) + "|")
                for r in rows:
                    out.append("| " + " | ".join(esc(c) for c in r) + " |")
                out.append("")
            elif b[0] == "img":
                out.append(f"![{b[2]}]({b[1]})\n")
            elif b[0] == "details":
                out.append(f"<details><summary>{html.escape(b[1])}</summary>\n")
                out.append("\n".join(f"- {i}" for i in b[2]) + "\n")
                out.append("</details>\n")
        return "\n".join(out)

    @staticmethod
    def _inline(s: str) -> str:
        s = html.escape(str(s), quote=False)
        s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
        s = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", s)
        s = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', s)
        return s

    def html(self, title: str) -> str:
        css = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
               "table{border-collapse:collapse;font-size:13px;margin:0.5em 0 1.5em}"
               "td,th{border:1px solid #ccc;padding:3px 7px}th{background:#f0f0f0}td.r{text-align:right}"
               "tr:nth-child(even){background:#fafafa}img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}"
               "code{background:#f4f4f4;padding:0 3px}h2{border-bottom:1px solid #ddd;padding-bottom:3px}")
        out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
               f"<style>{css}</style></head><body>"]
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"<h{b[1]}>{self._inline(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                out.append(f"<p>{self._inline(b[1])}</p>")
            elif b[0] == "ul":
                out.append("<ul>" + "".join(f"<li>{self._inline(i)}</li>" for i in b[1]) + "</ul>")
            elif b[0] == "table":
                head, rows, align = b[1], b[2], b[3] or ["r"] * len(b[1])
                out.append("<table><tr>" + "".join(f"<th>{self._inline(h)}</th>" for h in head) + "</tr>")
                for r in rows:
                    out.append("<tr>" + "".join(f"<td class='{a}'>{self._inline(c)}</td>" for a, c in zip(align, r))
                               + "</tr>")
                out.append("</table>")
            elif b[0] == "img":
                out.append(f"<p><img src='{html.escape(b[1])}' alt='{html.escape(b[2])}'></p>")
            elif b[0] == "details":
                out.append(f"<details><summary>{html.escape(b[1])}</summary><ul>"
                           + "".join(f"<li>{self._inline(i)}</li>" for i in b[2]) + "</ul></details>")
        out.append("</body></html>")
        return "\n".join(out)


def summary_table(run: Run, summ: Summary) -> tuple[list[str], list[list[str]], list[str]]:
    top = max_threads(run)
    head = ["family", "op", "form", "shape", "T", "1 thread ms", f"{top} threads ms" if top > 1 else "-",
            "speedup", "tokens/s", "GFLOP/s", "GB/s", "roofline", "bound"]
    rows = []
    for r in summ.rows:
        o = summ.one.get(r.series)
        hi = r if r.threads != 1 else None
        rows.append([r.program, f"`{r.op}`", r.form, r.shape, fmt_t(r.T), fmt_num(o.ms) if o else "-",
                     fmt_num(hi.ms) if hi else "-",
                     f"{summ.speedup[r.series]:.2f}x" if r.series in summ.speedup else "-",
                     fmt_num(r.tok_s), fmt_num(r.gflops), fmt_num(r.gbs), fmt_pct(r.roof), r.bound or "-"])
    align = ["l", "l", "l", "l", "r", "r", "r", "r", "r", "r", "r", "r", "l"]
    if top <= 1:
        for row in rows:
            del row[6:8]
        del head[6:8]
        del align[6:8]
    return head, rows, align


def at_a_glance(run: Run):
    top = max_threads(run)
    out = []
    for th in ([1, top] if top > 1 else [1]):
        cur = best_curves(run, ("prefill", "chunk", "recurrent", "forward"), th)
        cur = {k: v for k, v in cur.items() if "1 thread only" not in k[2] or th == 1}
        ts = sorted({t for v in cur.values() for t in v[0] if t >= 256 and (t & (t - 1)) == 0})
        if not cur or not ts:
            continue
        if len(ts) > 9:
            ts = ts[:: math.ceil(len(ts) / 9)]
        pref = {n: i for i, n in enumerate(run.programs)}
        keys = sorted(cur, key=lambda k: (pref.get(k[0], 99), k[1], k[2]))
        rows = []
        for k in keys:
            d = dict(zip(cur[k][0], cur[k][1]))
            if not any(t in d for t in ts):
                continue
            rows.append([k[0], f"`{k[1]}`", k[2]] + [
                f"{fmt_num(d[t])} {cur[k][2][t][0]}" if t in d else "" for t in ts])
        head = ["family", "op", "shape"] + [f"T={fmt_t(t)}, {th}t" for t in ts]
        out.append((head, rows, ["l", "l", "l"] + ["r"] * len(ts)))
    return out


def crossover_table(run: Run, ov: dict, dv: dict, cr: list):
    top = max_threads(run)
    rows: dict[tuple, dict[str, str]] = {}
    order: list[tuple] = []

    def put(k, col, text):
        key = (k[0], k[1], k[2].replace(", 1 thread only", "").replace(", flat: state size fixed", ""))
        if key not in rows:
            rows[key] = {}
            order.append(key)
        rows[key][col] = text

    ths = sorted(ov) or sorted(dv)
    for th in ths:
        for k, v, text, t in ov.get(th, []):
            put(k, f"prefill {th}t", text)
        for k, v, text, t in dv.get(th, []):
            put(k, f"decode {th}t", text)
    for k, c, rr, text, t in cr:
        put(k, f"chunk > recurrent {top}t", text)
    if not rows:
        return None
    cols = [f"prefill {th}t" for th in ths] + [f"decode {th}t" for th in ths] + [f"chunk > recurrent {top}t"]
    cols = [c for c in cols if any(c in r for r in rows.values())]
    pref = {n: i for i, n in enumerate(run.programs)}
    order.sort(key=lambda k: (pref.get(k[0], 99), k[1], k[2]))
    head = ["family", "op", "shape"] + [c.replace(" 1t", ", 1 thread").replace(f" {top}t", f", {top} threads")
                                       for c in cols]
    body = [[k[0], f"`{k[1]}`", k[2]] + [rows[k].get(c, "-") for c in cols] for k in order]
    return head, body, ["l", "l", "l"] + ["l"] * len(cols)


def build_report(folder: pathlib.Path) -> pathlib.Path:
    folder = pathlib.Path(folder)
    run = load_run(folder)
    plots = folder / "plots"
    plots.mkdir(exist_ok=True)
    top = max_threads(run)
    summ = summarize(run)
    m = run.manifest
    doc = Doc()
    doc.h(1, "seqmix benchmark report")
    when = run.context.get("date", m.get("stamp", ""))
    cpu = m.get("cpu", "")
    doc.p(f"Run `{folder.name}`: profile **{m.get('profile', '?')}**, commit `{m.get('git', '?')}`, {when}. "
          f"Machine: {cpu or 'unknown CPU'}, {run.context.get('num_cpus', m.get('nproc', '?'))} CPUs"
          + (f"; the whole command took {m['wall_s'] / 60:.1f} min." if m.get("wall_s") else "."))
    load = m.get("loadavg") or {}
    ncpu = m.get("nproc") or run.context.get("num_cpus") or 1
    la = [v for v in (load.get("start"), load.get("end")) if v is not None]
    if la:
        busy = max(la) > 0.5 * ncpu
        doc.p(f"Load average (1 min) at the start / end of the run: "
              + " / ".join(f"{v:.1f}" for v in la) + f" on {ncpu} CPUs"
              + (". **The machine was busy with other work**: multi-thread times, speedups and the calibration "
                 "(hence roofline fractions) are unreliable in this run; compare runs made on a quiet machine."
                 if busy else "."))
    cal = []
    for th in sorted(set(run.peak_gflops) | set(run.peak_gbs)):
        cal.append(f"{th} thread{'s' if th > 1 else ''}: FMA peak {fmt_num(run.peak_gflops.get(th))} GFLOP/s, "
                   f"STREAM triad {fmt_num(run.peak_gbs.get(th))} GB/s")
    doc.p("Roofline of this machine (bench_calibration): " + ("; ".join(cal) if cal else
          "**not measured** (bench_calibration did not run): roofline fractions are left out") + "."
          + (" The wall-clock calibration was lowered by load (" + "; ".join(
              f"{th} thread{'s' if th > 1 else ''}: {fmt_num(w[0])} GFLOP/s, {fmt_num(w[1])} GB/s"
              for th, w in sorted(run.calib_wall.items())) + "), so these ceilings come from CPU time."
             if run.calib_from_cpu else ""))

    # plots first computed, so the summary can quote the crossovers
    notes = []
    made = {}
    for key, fn in (("time_per_token", lambda p: plot_time_per_token(run, p)),):
        try:
            made[key] = fn(plots / f"{key}.png")
        except Exception as e:  # noqa: BLE001
            notes.append(f"plot {key} failed: {e}")
    try:
        ov = plot_overview(run, plots / "softmax_vs_linear.png", ("prefill", "chunk", "recurrent", "forward"),
                           "Prefill: time per token vs T, each family beside softmax attention (fastest form of each op)")
        made["softmax_vs_linear"] = bool(ov)
    except Exception as e:  # noqa: BLE001
        ov, made["softmax_vs_linear"] = {}, False
        notes.append(f"plot softmax_vs_linear failed: {e}")
    try:
        dv = {}
        if any(r.form == "decode" for r in run.recs):
            dv = plot_overview(run, plots / "decode.png", ("decode",),
                               "Decode: time per new token vs context length, each family beside attention over a KV cache")
        made["decode"] = bool(dv)
    except Exception as e:  # noqa: BLE001
        dv, made["decode"] = {}, False
        notes.append(f"plot decode failed: {e}")
    try:
        cr = plot_chunk_recurrent(run, plots / "chunk_vs_recurrent.png")
        made["chunk_vs_recurrent"] = bool(cr)
    except Exception as e:  # noqa: BLE001
        cr, made["chunk_vs_recurrent"] = [], False
        notes.append(f"plot chunk_vs_recurrent failed: {e}")
    for key, fn in (("roofline", lambda p: plot_roofline(run, summ, p)),
                    ("roofline_chart", lambda p: plot_roofline_chart(run, summ, p)),
                    ("thread_scaling", lambda p: plot_scaling(run, summ, p))):
        try:
            made[key] = fn(plots / f"{key}.png")
        except Exception as e:  # noqa: BLE001
            made[key] = False
            notes.append(f"plot {key} failed: {e}")

    glance = at_a_glance(run)
    if glance:
        doc.h(2, "At a glance: time per token (us) by sequence length")
        doc.p("Prefill cost per token of each op at its model shape, the fastest of its forms at each T "
              "(c = chunk, r = recurrent, p = prefill, f = single form); lower is better. This is the table that "
              "answers \"which mixer at my lengths\"; the summary below has the details.")
        for head, rows, align in glance:
            doc.table(head, rows, align)
    doc.h(2, "Summary")
    if not summ.rows:
        doc.p("**No op benchmarks ran** (only the calibration, or nothing): see *Programs* below.")
    else:
        doc.p(f"One row per op and form, at the largest T measured at both 1 and {top} threads; time is the median "
              "wall time of one call; roofline = achieved / attainable (min of FMA peak and arithmetic intensity x "
              "STREAM bandwidth, at the same thread count).")
        head, rows, align = summary_table(run, summ)
        doc.table(head, rows, align)
    cross = crossover_table(run, ov or {}, dv or {}, cr or [])
    if cross:
        doc.h(3, "Crossovers")
        doc.p("Where each op overtakes softmax attention per token (prefill, and decode against a KV cache of "
              "length T), and where its chunk form overtakes its recurrent form; from the plots below.")
        doc.table(*cross)
    present = [p for p in run.programs if p != "calibration"]
    progs = m.get("programs", {})
    absent = [n.removeprefix("bench_") for n, s in progs.items() if not s.get("ok") and n != "bench_calibration"]
    doc.p("Families measured: " + (", ".join(present) if present else "none")
          + (f". **Not measured:** {', '.join(absent)} (see *Programs*)." if absent else "."))

    doc.h(2, "Plots")
    captions = {
        "softmax_vs_linear": "Every family side by side, prefill: time per token vs T (log-log), fastest form of each op at "
                             f"{top} threads; the X marks and labels give the T where each linear/SSM op overtakes softmax "
                             "attention.",
        "time_per_token": "Each family: every op and form, time per token vs T (solid: all threads, dashed: 1 thread).",
        "decode": "Decode: time per new token vs context length: attention reads its whole KV cache, recurrent "
                  "forms a fixed-size state.",
        "chunk_vs_recurrent": "Chunk vs recurrent form of the same op: the chunk form pays a fixed cost per chunk and "
                              "wins at long T.",
        "roofline": "Fraction of the roofline each op reaches (1 = at the machine's limit for its arithmetic intensity).",
        "roofline_chart": "The roofline: ops as points (arithmetic intensity, GFLOP/s) under the machine's roof.",
        "thread_scaling": f"Speedup of {top} threads over 1 at the same T (green: >= 90% of ideal).",
    }
    for key in ("softmax_vs_linear", "time_per_token", "decode", "chunk_vs_recurrent", "roofline", "roofline_chart",
                "thread_scaling"):
        if made.get(key):
            doc.h(3, key.replace("_", " "))
            doc.p(captions[key])
            doc.img(f"plots/{key}.png", key)
    missing_plots = [k for k in captions if not made.get(k)]
    if missing_plots:
        doc.p("Not drawn (no data for them yet): " + ", ".join(missing_plots) + ".")
    if notes:
        doc.ul(notes)

    doc.h(2, "How to read this report")
    doc.ul([
        "**time per token** = median wall time of one call / tokens it produced (T for a prefill, chunk or "
        "recurrent pass; the batch for one decode step). Lower is better; flat lines mean linear cost in T.",
        "**softmax vs linear**: softmax attention costs O(T) per token in prefill, the linear and SSM families O(1), "
        "so past some T they win; the crossover depends on head sizes, so each family runs at a real model's shape "
        "(the *shape* column).",
        "**roofline**: 100% means the op runs at the machine's limit for its arithmetic intensity (FLOP per byte moved). "
        "Memory-bound ops are judged against STREAM bandwidth from DRAM, so ops whose data fit in cache can exceed 100%.",
        "**speedup**: all threads over one thread at the same T; the project's target is >= 0.9 x threads.",
        "Timings on a machine shared with other work are noisy; compare runs with "
        "`tools/run-benchmarks --compare A B` (ratios, not absolute times).",
    ])

    doc.h(2, "All results")
    for prog in present:
        rs = sorted((r for r in run.recs if r.program == prog),
                    key=lambda r: (r.op_key, r.op, r.shape, r.threads, r.T))
        if not rs:
            continue
        doc.h(3, prog)
        doc.table(["op", "form", "shape", "T", "threads", "median ms", "us/token", "GFLOP/s", "GB/s", "tokens/s",
                   "roofline", "reps"],
                  [[f"`{r.op}`", r.form, r.shape, r.T, r.threads, fmt_num(r.ms), fmt_num(r.us_per_token),
                    fmt_num(r.gflops), fmt_num(r.gbs), fmt_num(r.tok_s), fmt_pct(r.roof),
                    f"{r.reps}" + (f" (cv {100 * r.cv:.0f}%)" if r.cv is not None else "")] for r in rs],
                  ["l", "l", "l", "r", "r", "r", "r", "r", "r", "r", "r", "r"])

    doc.h(2, "Programs")
    if progs:
        rows = []
        for n, s in progs.items():
            rows.append([n, s.get("status", "?"), f"{s.get('ok', 0)}/{s.get('instances', 0)}",
                         len(s.get("timeout", [])), len(s.get("crashed", [])), len(s.get("skipped", [])),
                         s.get("filtered", 0), s.get("source", "")])
        doc.table(["program", "status", "instances ok", "timed out", "failed", "skipped", "filtered", "source"], rows,
                  ["l", "l", "r", "r", "r", "r", "r", "l"])
        for n, s in progs.items():
            for key in ("timeout", "crashed", "skipped"):
                if s.get(key):
                    doc.details(f"{n}: {len(s[key])} {key}", s[key][:200])
    else:
        doc.p("No run.json in this folder (report built from JSON files alone): " + ", ".join(run.programs) + ".")
    st = m.get("settings")
    if st:
        doc.p(f"Profile settings: T up to {st.get('max_t')}, --benchmark_min_time={st.get('min_time')}, "
              f"{st.get('reps')} repetition(s), {st.get('timeout')} s per instance, budget "
              f"{st.get('budget') or 'none'} s, baselines to T={st.get('baseline_max_t')}.")

    md = folder / "report.md"
    md.write_text(doc.md())
    (folder / "report.html").write_text(doc.html("seqmix benchmark report " + folder.name))
    return md


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    print(build_report(pathlib.Path(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
