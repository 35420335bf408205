#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# tools/bench/run.py: the benchmark suite runner behind tools/run-benchmarks: configures and builds every
# bench/**/bench_*.cpp program, runs each benchmark instance on its own under a time budget, writes one
# Google Benchmark JSON per program plus run.json into reports/<timestamp>/, then builds the report.
"""Run the seqmix benchmark suite (see docs/07-benchmarks.md)."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

PROFILES = {
    # max_t: largest T the sweeps register; min_time: seconds per instance (GB 1.7 takes a double);
    # reps: repetitions (median reported when > 1); timeout: seconds per instance; budget: seconds for the
    # whole command (build included) after which the remaining instances are skipped, and listed;
    # baseline_max_t: reference / naive baselines are run only up to this T.
    "quick": dict(max_t=8192, min_time=0.05, reps=1, timeout=45, budget=560, baseline_max_t=1024),
    "full": dict(max_t=65536, min_time=0.5, reps=3, timeout=600, budget=None, baseline_max_t=8192),
}

BASELINE_RE = re.compile(r"(reference|naive|baseline|eigen_naive)", re.I)
T_ARG_RE = re.compile(r"/T:(\d+)")


def log(msg: str = "") -> None:
    print(msg, flush=True)


def fmt_secs(s: float) -> str:
    s = int(s)
    return f"{s // 60}m{s % 60:02d}s"


def ere_escape(s: str) -> str:
    """Escapes a benchmark name for Google Benchmark's POSIX-extended regex filter."""
    return "".join("\\" + c if c in ".[]{}()*+?^$|\\" else c for c in s)


def discover_sources() -> list[pathlib.Path]:
    srcs = sorted((ROOT / "bench").rglob("bench_*.cpp"))
    # calibration first: every other result is divided by it
    return sorted(srcs, key=lambda p: (p.stem != "bench_calibration", str(p)))


def cmake_generator(build: pathlib.Path) -> str:
    cache = build / "CMakeCache.txt"
    if cache.exists():
        m = re.search(r"^CMAKE_GENERATOR:INTERNAL=(.*)$", cache.read_text(errors="replace"), re.M)
        if m:
            return m.group(1)
    return "Unix Makefiles"


def build_programs(build: pathlib.Path, names: list[str], jobs: int, out: pathlib.Path) -> dict[str, str]:
    """Configures and builds the bench targets (keep going past failures). Returns name -> status."""
    logf = out / "build.log"
    cfg = ["cmake", "-S", str(ROOT), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
           "-DSEQMIX_BUILD_BENCH=ON", "-DSEQMIX_BUILD_TESTS=OFF", "-DSEQMIX_BUILD_EXAMPLES=OFF",
           "-DSEQMIX_BUILD_TOOLS=OFF"]
    log(f"== configure: {build}")
    with open(logf, "w") as lf:
        r = subprocess.run(cfg, stdout=lf, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        log(logf.read_text()[-4000:])
        raise SystemExit("cmake configure failed (log above; full log in " + str(logf) + ")")
    exes = {n: build / "bench" / n for n in names}
    for e in exes.values():  # a stale binary must not pass for a fresh build
        if e.exists():
            e.unlink()
    keep_going = ["--", "-k", "0"] if "Ninja" in cmake_generator(build) else ["--", "-k"]
    log(f"== build: {len(names)} programs, -j{jobs} (one translation unit each)")
    t0 = time.time()
    with open(logf, "a") as lf:
        p = subprocess.Popen(["cmake", "--build", str(build), "--target", *names, "-j", str(jobs), *keep_going],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        assert p.stdout is not None
        for line in p.stdout:
            lf.write(line)
            m = re.search(r"Building CXX object bench/CMakeFiles/(\w+)\.dir", line)
            if m:
                log(f"   compiling {m.group(1)}  ({fmt_secs(time.time() - t0)})")
            elif m := re.search(r"Built target (\w+)", line):
                log(f"   built {m.group(1)}  ({fmt_secs(time.time() - t0)})")
        p.wait()
    status = {n: ("built" if e.exists() else "build failed") for n, e in exes.items()}
    failed = [n for n, s in status.items() if s != "built"]
    if failed:
        errs = [l for l in logf.read_text(errors="replace").splitlines() if "error" in l and "Error " not in l]
        log(f"   BUILD FAILED: {', '.join(failed)} (first compiler errors below; full log {logf})")
        for l in errs[:10]:
            log("     " + l[:300])
    log(f"== build done in {fmt_secs(time.time() - t0)}: {len(names) - len(failed)} built, {len(failed)} failed")
    return status


def list_instances(exe: pathlib.Path, env: dict) -> list[str]:
    r = subprocess.run([str(exe), "--benchmark_list_tests"], env=env, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip()[-500:] or f"exit {r.returncode}")
    return [l.strip() for l in r.stdout.splitlines() if l.strip()]


def t_of(name: str) -> int:
    m = T_ARG_RE.search(name)
    return int(m.group(1)) if m else 0


def short_result(b: dict) -> str:
    unit = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}.get(b.get("time_unit", "ns"), 1e-6)
    parts = [f"{b['real_time'] * unit:10.3f} ms"]
    for k in ("GFLOP/s", "GB/s"):
        if k in b:
            parts.append(f"{b[k]:8.2f} {k}")
    return "  ".join(parts)


def run_suite(args) -> pathlib.Path:
    start = float(os.environ.get("SEQMIX_RUN_START", time.time()))
    prof = dict(PROFILES[args.profile])
    if args.budget is not None:
        prof["budget"] = args.budget if args.budget > 0 else None
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = pathlib.Path(args.out) if args.out else ROOT / "reports" / stamp
    out.mkdir(parents=True, exist_ok=True)
    build = pathlib.Path(args.build_dir)
    jobs = args.jobs or os.cpu_count() or 2

    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    srcs = discover_sources()
    names = [s.stem for s in srcs]
    log(f"== seqmix benchmarks, profile '{args.profile}' (T up to {prof['max_t']}, min_time {prof['min_time']} s, "
        f"{prof['reps']} repetition(s)); {len(names)} programs: {', '.join(names)}")
    if args.no_build:
        status = {n: ("built" if (build / "bench" / n).exists() else "not built") for n in names}
    else:
        status = build_programs(build, names, jobs, out)

    env = dict(os.environ, SEQMIX_BENCH_MAX_T=str(prof["max_t"]))
    plan: list[tuple[str, str]] = []  # (program, instance)
    per_prog: dict[str, dict] = {}
    user_re = re.compile(args.filter) if args.filter else None
    for n in names:
        rec = per_prog[n] = {"source": str(srcs[names.index(n)].relative_to(ROOT)), "status": status[n],
                             "instances": 0, "ok": 0, "timeout": [], "crashed": [], "skipped": [],
                             "filtered": 0, "benchmarks": [], "context": None}
        if status[n] != "built":
            continue
        try:
            inst = list_instances(build / "bench" / n, env)
        except Exception as e:  # noqa: BLE001 - report, never skip silently
            rec["status"] = f"crashed while listing: {e}"
            log(f"   {n}: CRASHED while listing its benchmarks: {e}")
            continue
        rec["instances"] = len(inst)
        for i in inst:
            if user_re and not user_re.search(i) and n != "bench_calibration":
                rec["filtered"] += 1
            elif BASELINE_RE.search(i) and t_of(i) > prof["baseline_max_t"]:
                rec["skipped"].append(f"{i} (profile: baselines only to T={prof['baseline_max_t']})")
            else:
                plan.append((n, i))
    # calibration first, then every program's instances by increasing T: when the budget runs out, each
    # family still has its short sequences measured.
    order = {n: k for k, n in enumerate(names)}
    plan.sort(key=lambda x: (x[0] != "bench_calibration", t_of(x[1]), order[x[0]]))

    # the machine's ceilings again at the end (when the budget allows): the report keeps the best of the two,
    # so a burst of load during one calibration does not understate the roofline
    n_cal = sum(1 for n, _ in plan if n == "bench_calibration")
    plan += [(n, i) for n, i in plan if n == "bench_calibration"]
    tmpdir = pathlib.Path(tempfile.mkdtemp(prefix="seqmix-bench-"))
    log(f"== running {len(plan) - n_cal} benchmark instances (the calibration first, and again at the end)"
        + (f" (budget: {fmt_secs(prof['budget'])} for the whole command, {fmt_secs(time.time() - start)} used)"
           if prof["budget"] else ""))
    width = max((len(i) for _, i in plan), default=20)
    reserve = 25.0  # seconds kept for the report
    for k, (n, inst) in enumerate(plan, 1):
        rec = per_prog[n]
        elapsed = time.time() - start
        repeat = n == "bench_calibration" and k > len(plan) - n_cal and len(plan) > n_cal
        if prof["budget"] and elapsed > prof["budget"] - reserve:
            if not repeat:
                rec["skipped"].append(f"{inst} (time budget)")
            continue
        timeout = prof["timeout"]
        if prof["budget"]:
            timeout = max(5.0, min(timeout, prof["budget"] - reserve - elapsed))
        jf = tmpdir / f"{k}.json"
        cmd = [str(build / "bench" / n), f"--benchmark_filter=^{ere_escape(inst)}$",
               f"--benchmark_min_time={max(prof['min_time'], 0.3) if n == 'bench_calibration' else prof['min_time']}", f"--benchmark_out={jf}", "--benchmark_out_format=json"]
        if n == "bench_calibration":  # every repetition reported: the report keeps the best (load only lowers it)
            cmd += ["--benchmark_repetitions=3"]
        elif prof["reps"] > 1:
            cmd += [f"--benchmark_repetitions={prof['reps']}", "--benchmark_report_aggregates_only=true"]
        head = f"[{k:4d}/{len(plan)} {fmt_secs(time.time() - start)}] {n.removeprefix('bench_'):<18} {inst:<{width}}"
        try:
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, errors="replace")
        except subprocess.TimeoutExpired:
            rec["timeout"].append(f"{inst} (> {timeout:.0f} s)")
            log(f"{head}  TIMEOUT after {timeout:.0f} s")
            continue
        data = None
        if r.returncode == 0 and jf.exists():
            try:
                data = json.loads(jf.read_text())
            except json.JSONDecodeError:
                data = None
        if not data or not data.get("benchmarks"):
            if r.returncode < 0:
                try:
                    why = f"killed by {signal.Signals(-r.returncode).name}"
                except ValueError:
                    why = f"killed by signal {-r.returncode}"
            else:
                lines = [l for l in r.stderr.strip().splitlines() if "***WARNING***" not in l]
                why = (lines or [f"exit {r.returncode}"])[-1][:200]
            rec["crashed"].append(f"{inst} ({why})")
            log(f"{head}  FAILED: {why}")
            continue
        rec["context"] = rec["context"] or data.get("context")
        bs = data["benchmarks"]
        for b in bs:
            if b.get("error_occurred"):
                rec["crashed"].append(f"{inst} ({b.get('error_message', 'error')})")
        rec["benchmarks"].extend(b for b in bs if not b.get("error_occurred"))
        if not repeat:
            rec["ok"] += 1
        shown = next((b for b in bs if b.get("aggregate_name") == "median"), min(bs, key=lambda b: b["real_time"]))
        log(f"{head}  {short_result(shown)}")
    shutil.rmtree(tmpdir, ignore_errors=True)

    # one Google Benchmark JSON per program (the compare mode and report read these), plus the manifest
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    manifest = {"profile": args.profile, "loadavg": {"start": load_start, "end": load_end}, "settings": prof, "stamp": stamp, "started": start,
                "wall_s": None, "git": git_describe(), "nproc": os.cpu_count(), "cpu": cpu_model(),
                "programs": {}}
    for n, rec in per_prog.items():
        if rec["benchmarks"]:
            (out / f"{n}.json").write_text(json.dumps(
                {"context": rec["context"] or {}, "benchmarks": rec["benchmarks"]}, indent=1))
        manifest["programs"][n] = {k: v for k, v in rec.items() if k not in ("benchmarks", "context")}
    manifest["wall_s"] = time.time() - start
    (out / "run.json").write_text(json.dumps(manifest, indent=1))

    log("== what ran")
    for n, m in manifest["programs"].items():
        extra = []
        for key in ("timeout", "crashed", "skipped"):
            if m[key]:
                extra.append(f"{len(m[key])} {key}")
        if m["filtered"]:
            extra.append(f"{m['filtered']} filtered out")
        log(f"   {n:<28} {m['status']:<14} {m['ok']:4d}/{m['instances']:<4d} instances ok"
            + (f"  ({', '.join(extra)})" if extra else ""))
    missing = [n for n in names if per_prog[n]["status"] != "built"]
    if missing:
        log(f"   NOT RUN (see above): {', '.join(missing)}")

    import report  # noqa: E402 - after sys.path setup

    log("== report")
    rep = report.build_report(out)
    manifest["wall_s"] = time.time() - start
    (out / "run.json").write_text(json.dumps(manifest, indent=1))
    log(f"== done in {fmt_secs(manifest['wall_s'])} (profile '{args.profile}')")
    log(f"report: {rep}")
    log(f"        {rep.with_suffix('.html')}")
    return rep


def git_describe() -> str:
    try:
        r = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return r.stdout.strip() + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="tools/run-benchmarks", description=__doc__)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", dest="profile", action="store_const", const="quick",
                   help="quick profile (default): T up to 8k, < 10 minutes on 2 cores including the build")
    g.add_argument("--full", dest="profile", action="store_const", const="full",
                   help="full profile: T up to 64k, 3 repetitions (median), no time budget")
    g.add_argument("--compare", nargs=2, metavar=("A", "B"),
                   help="ratio table of two runs (JSON files or report folders); B/A > 1 means B is slower")
    g.add_argument("--report", metavar="DIR", help="rebuild the report of an existing run folder")
    ap.set_defaults(profile="quick")
    ap.add_argument("--filter", help="Python regex on benchmark names (calibration always runs)")
    ap.add_argument("--budget", type=float, help="seconds for the whole command (0: none)")
    ap.add_argument("--out", help="output folder (default reports/<UTC timestamp>)")
    ap.add_argument("--build-dir", default=str(ROOT / "build" / "bench"))
    ap.add_argument("--jobs", type=int, help="parallel compile jobs (default: all cores)")
    ap.add_argument("--no-build", action="store_true", help="use the programs already in --build-dir")
    ap.add_argument("--threshold", type=float, default=0.10, help="compare: flag ratios beyond 1 +/- this")
    ap.add_argument("--fail-on-regression", action="store_true", help="compare: exit 2 when a time ratio is flagged")
    args = ap.parse_args(argv)
    if args.compare:
        import compare
        return compare.main(args.compare[0], args.compare[1], args.threshold, args.fail_on_regression)
    if args.report:
        import report
        rep = report.build_report(pathlib.Path(args.report))
        log(f"report: {rep}")
        return 0
    run_suite(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
