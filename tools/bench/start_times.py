#!/usr/bin/env python3
"""How long rnnjit takes to start: an engine made, its first step, synchronized.

    python3 tools/bench/start_times.py --lib build/engine/librnnjit_c.so \\
        [--shapes kb-v0,b1-4k,mid,kb-large] [--precisions tf32,fp32] [--window 2] [--phases] [--json FILE]

Every case runs in a fresh process, where PyTorch has made the CUDA context and the tensors and
rnnjit's library is loaded before the clock starts; the time is rnnjit.Engine() + rnn_step() +
torch.cuda.synchronize(). Per shape and precision, in this order:

  blocking    an empty cache, tuning="blocking": the first call compiles and times the candidates
  background  an empty cache, tuning="background": the first call compiles one candidate and runs it;
              then steady calls (each synchronized) for at most --window seconds, and "winner" is the
              time from the start until the tuned winner is in place (rnnjit.Engine.plan())
  warm        a new process on the cache the blocking case left: no NVRTC, no timing
  system      an empty cache over the blocking case's cache as the system cache

Every result is checked against a float64 reference (sampled rows for big batches). --phases also
prints, per case, the start-up phases the engine logs at debug level (driver, device, context,
cache open, the first plan's lookup and module load, and a tuning's copy of the problem, each
candidate's build and time; docs/kernels.md, "Start-up and the background tuner"); logging costs a
little time itself. rnnjit is the package in python/rnnjit over --lib's
librnnjit_c.so (or the installed package when --lib is not given).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

from bench_support import error_bounds, import_rnnjit

SHAPES = {"kb-v0": (8, 1024, 256, 128), "b1-4k": (1, 4096, 4096, 4096),
          "mid": (64, 2048, 2048, 1024), "kb-large": (256, 16384, 16384, 8192)}
MODES = ("blocking", "background", "warm", "system")


def child(args):
    """One case; prints one JSON line."""
    import torch

    rnnjit = import_rnnjit(args.lib)
    rnnjit._lib.load()  # the library and NVRTC loaded before the clock, as in a process that imported rnnjit
    B, I, H, O = (int(v) for v in args.shape.split(","))
    torch.manual_seed(0)
    i2h, h2o = torch.nn.Linear(I + H, H).cuda(), torch.nn.Linear(H, O).cuda()
    w1, b1, w2, b2 = (t.detach().contiguous() for t in (i2h.weight, i2h.bias, h2o.weight, h2o.bias))
    x, h = torch.rand(B, I, device="cuda"), torch.rand(B, H, device="cuda")
    torch.cuda.synchronize()

    t0 = time.perf_counter()
    engine = rnnjit.Engine(cache=args.cache, system_cache=args.system, tuning=args.tuning,
                           log_level="debug" if args.phases else None)
    h_out, y = engine.rnn_step(x, h, w1, b1, w2, b2, precision=args.precision)
    torch.cuda.synchronize()
    start_ms = (time.perf_counter() - t0) * 1e3
    first_state, first_config = engine.plan(B, I, H, O, precision=args.precision)

    winner_ms = None
    state, config = first_state, first_config
    if first_state == "tuning":
        t1 = time.perf_counter()
        while time.perf_counter() - t1 < args.window:
            h_out, y = engine.rnn_step(x, h, w1, b1, w2, b2, precision=args.precision)
            torch.cuda.synchronize()
            state, config = engine.plan(B, I, H, O, precision=args.precision)
            if state == "tuned":
                winner_ms = (time.perf_counter() - t0) * 1e3
                break

    rows = B if B * (I + H) * H <= 4e8 else min(B, 2)
    d = [t.double() for t in (x[:rows], h[:rows], w1, b1, w2, b2)]
    ref_h = torch.tanh(torch.cat(d[:2], 1) @ d[2].T + d[3])
    ref_y = ref_h @ d[4].T + d[5]

    def rel_err(out, ref):
        out = out[:rows].double()
        return math.inf if not torch.isfinite(out).all() else ((out - ref).norm() / ref.norm()).item()

    error = max(rel_err(h_out, ref_h), rel_err(y, ref_y))
    stats = {"start_ms": start_ms, "winner_ms": winner_ms, "first": [first_state, first_config],
             "last": [state, config], "error": error}
    engine.close()  # stops background tuning that has not finished
    print(json.dumps(stats), flush=True)


def run_case(args, mode, shape, precision, work):
    cache = {"blocking": "blocking.sqlite", "background": "background.sqlite", "warm": "blocking.sqlite",
             "system": "empty.sqlite"}[mode]
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--shape", ",".join(map(str, shape)),
           "--precision", precision, "--cache", os.path.join(work, cache),
           "--system", os.path.join(work, "blocking.sqlite") if mode == "system" else "off",
           "--tuning", "background" if mode == "background" else "blocking", "--window", str(args.window)]
    if args.lib:
        cmd += ["--lib", args.lib]
    if args.phases:
        cmd.append("--phases")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        return {"failed": f"exit {r.returncode}: {r.stderr.strip()[-2000:]}"}
    out = json.loads(r.stdout.strip().splitlines()[-1])
    keys = ("start-up:", "plan for", "candidate", "tuned ", "background tuning", "a copy of the problem")
    out["phases"] = [line for line in r.stderr.splitlines() if any(k in line for k in keys)]
    return out


def fmt_ms(v):
    if v is None:
        return "-"
    return f"{v:.1f}" if v < 1000 else f"{v:.0f}"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lib", help="librnnjit_c.so to use (default: the installed package's)")
    p.add_argument("--shapes", default=",".join(SHAPES), help="anchor names, comma-separated")
    p.add_argument("--precisions", default="tf32,fp32")
    p.add_argument("--window", type=float, default=2.0, help="seconds of steady calls for the background winner")
    p.add_argument("--phases", action="store_true", help="print the engine's start-up phases per case")
    p.add_argument("--json", help="also write every case's numbers to this file")
    # The child's arguments.
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--shape", help=argparse.SUPPRESS)
    p.add_argument("--precision", help=argparse.SUPPRESS)
    p.add_argument("--cache", help=argparse.SUPPRESS)
    p.add_argument("--system", help=argparse.SUPPRESS)
    p.add_argument("--tuning", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)

    bound = error_bounds(import_rnnjit(args.lib))
    results = []
    for name in args.shapes.split(","):
        shape = SHAPES[name]
        for precision in args.precisions.split(","):
            with tempfile.TemporaryDirectory(prefix="rnnjit-start-") as work:
                cases = {mode: run_case(args, mode, shape, precision, work) for mode in MODES}
            results.append({"shape": name, "precision": precision, "cases": cases})
            print(f"{name} {precision}: " + ", ".join(
                f"{m} {fmt_ms(c.get('start_ms'))}" if "failed" not in c else f"{m} FAILED" for m, c in cases.items()),
                file=sys.stderr, flush=True)

    print(f"{'shape':<9} {'prec':<5} {'blocking ms':>12} {'background ms':>14} {'winner ms':>10} {'warm ms':>8} "
          f"{'system ms':>10}  {'check':<6} background: first -> last plan")
    failures = 0
    for r in results:
        c = r["cases"]
        bad = [m for m, v in c.items() if "failed" in v or not v["error"] <= bound[r["precision"]]]
        failures += len(bad)
        bg = c["background"]
        plans = "-" if "failed" in bg else f"{bg['first'][1]} -> {bg['last'][1]} ({bg['last'][0]})"
        winner = bg.get("winner_ms")
        winner_text = fmt_ms(winner) if winner is not None or "failed" in bg else f"> {args.window:g} s"
        print(f"{r['shape']:<9} {r['precision']:<5} {fmt_ms(c['blocking'].get('start_ms')):>12} "
              f"{fmt_ms(bg.get('start_ms')):>14} {winner_text:>10} {fmt_ms(c['warm'].get('start_ms')):>8} "
              f"{fmt_ms(c['system'].get('start_ms')):>10}  {'FAIL ' + ','.join(bad) if bad else 'pass':<6} {plans}")
    for r in results:
        for mode, c in r["cases"].items():
            if "failed" in c:
                print(f"\n{r['shape']} {r['precision']} {mode}: {c['failed']}")
            elif args.phases:
                print(f"\n{r['shape']} {r['precision']} {mode}:")
                for line in c["phases"]:
                    print("  " + line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
