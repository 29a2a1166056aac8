#!/usr/bin/env python3
"""rnnjit beside its anchors, in one process on one GPU, on the same torch tensors.

    python3 tools/bench/side_by_side.py [--lib build/engine/librnnjit_c.so] \
        --seed .anchors/seed_triton_rnn.py [--shapes kb-v0,b1-4k,mid,kb-large] [--png out.png]
    python3 tools/bench/side_by_side.py --sweep 60 --seed-sweep 7 --bench build/tools/bench/rnnjit-bench
    python3 tools/bench/side_by_side.py --sequences kb-seq,mid-seq,large-seq
    python3 tools/bench/side_by_side.py --dtype bf16 [--shapes kb-v0,b1-4k,mid] [--sweep 60 ...]

--dtype bf16 stores every tensor as bf16 (rounded from the fp32 draws) and times rnnjit's bf16 step
beside the same step in PyTorch bf16: eager, eager in a CUDA graph, torch.compile; the float64
reference is computed from the same bf16 values.

--sequences times whole sequences (Engine.rnn_sequence) beside cuDNN's nn.RNN(tanh) + Linear,
tf32 allowed and fp32 with tf32 off (with --dtype bf16: both in bf16), and beside the same steps as
rnn_step calls in a CUDA graph.

--sweep times rnnjit against PyTorch on N random shapes (the bench's `--sweep N --seed S
--list-shapes`: the same shapes as `rnnjit-bench --sweep`), tf32 against eager tf32 in a CUDA
graph and fp32 against eager fp32 (with --dtype bf16: bf16 against eager bf16 in a CUDA graph, no
torch.compile), and ends with the worst ratio and the geometric mean.

Anchors (f32 tensors): PyTorch eager fp32, tf32, bf16 (weights and inputs cast); eager tf32 in a
CUDA graph; torch.compile (tf32); the seed's Triton kernels (tf32). rnnjit is called through its
Python package (python/rnnjit: `pip install .`), with --lib's library instead of the installed one
when given. Every method's output is checked against a float64 reference (sampled rows for big
batches).
Times are medians of triton.testing.do_bench; x and h rotate among 4 sets so that they do
not sit in L2 from the previous call. Ratios are anchor time / rnnjit time.
"""
import argparse
import importlib.util
import math
import subprocess
import sys

import torch
import triton.testing

from bench_support import error_bounds, import_rnnjit

SHAPES = {"kb-v0": (8, 1024, 256, 128), "b1-4k": (1, 4096, 4096, 4096),
          "mid": (64, 2048, 2048, 1024), "kb-large": (256, 16384, 16384, 8192)}
SETS = 4
SEQUENCES = {"kb-seq": (256, 8, 1024, 256, 128), "mid-seq": (64, 64, 1024, 1024, 512),
             "large-seq": (64, 1, 4096, 4096, 4096)}  # T, B, I, H, O


def reference(x, h, w1, b1, w2, b2, rows):
    xd, hd = x[:rows].double(), h[:rows].double()
    hn = torch.tanh(torch.cat([xd, hd], 1) @ w1.double().T + b1.double())
    return hn, hn @ w2.double().T + b2.double()


def rel_err(out, ref):
    out = out.double()
    if not torch.isfinite(out).all():
        return math.inf
    return ((out - ref).norm() / ref.norm()).item()


def eager(x, h, w1, b1, w2, b2, dtype=torch.float32):
    hn = torch.tanh(torch.nn.functional.linear(torch.cat([x, h], 1).to(dtype), w1, b1))
    return hn, torch.nn.functional.linear(hn, w2, b2)


def set_tf32(on):
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def sequences(args):
    """Whole sequences: rnnjit's rnn_sequence, cuDNN's nn.RNN(tanh) + Linear, and the steps as
    rnn_step calls in a CUDA graph; y over all T checked against a float64 recurrence. --dtype
    bf16: every tensor bf16 on both sides (the reference from the same bf16 values)."""
    torch.manual_seed(0)
    rnnjit = import_rnnjit(args.lib)
    bound = error_bounds(rnnjit)
    rj = rnnjit.Engine()
    dt = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    precs = ("bf16",) if args.dtype == "bf16" else ("tf32", "fp32")
    rows = []
    for name in args.sequences.split(","):
        T, B, I, H, O = SEQUENCES[name]
        rnn = torch.nn.RNN(I, H, nonlinearity="tanh").cuda().to(dt)
        lin = torch.nn.Linear(H, O).cuda().to(dt)
        with torch.no_grad():
            rnn.bias_hh_l0.zero_()  # rnnjit has one bias, b1
            w1 = torch.cat([rnn.weight_ih_l0, rnn.weight_hh_l0], 1).contiguous()
            b1, w2, b2 = rnn.bias_ih_l0.detach().contiguous(), lin.weight.detach().contiguous(), lin.bias.detach().contiguous()
        x = torch.rand(T, B, I, device="cuda").to(dt)
        h0 = torch.rand(B, H, device="cuda").to(dt)
        with torch.no_grad():
            hd, ref = h0.double(), []
            for t in range(T):
                hd = torch.tanh(torch.cat([x[t].double(), hd], 1) @ w1.double().T + b1.double())
                ref.append(hd @ w2.double().T + b2.double())
            ref = torch.stack(ref)
        y, h_n = torch.empty(T, B, O, device="cuda", dtype=dt), torch.empty(B, H, device="cuda", dtype=dt)
        hs = [torch.empty(B, H, device="cuda", dtype=dt) for _ in range(2)]
        y_steps = torch.empty(T, B, O, device="cuda", dtype=dt)

        def cudnn():
            with torch.no_grad():
                out, _ = rnn(x, h0.unsqueeze(0))
                return lin(out)

        def steps(prec):
            h = h0
            for t in range(T):
                rj.rnn_step(x[t], h, w1, b1, w2, b2, h_out=hs[t % 2], y=y_steps[t], precision=prec)
                h = hs[t % 2]
            return y_steps

        results = {}
        for prec in precs:
            set_tf32(prec == "tf32")
            steps(prec)  # tunes the step outside the capture
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                steps(prec)
            methods = {"cuDNN nn.RNN + Linear": cudnn,
                       "rnnjit rnn_sequence": lambda: rj.rnn_sequence(x, h0, w1, b1, w2, b2, y=y, h_n=h_n,
                                                                      precision=prec)[0],
                       "rnnjit steps in a graph": lambda: (graph.replay(), y_steps)[1]}
            for mname, fn in methods.items():
                out = fn()
                torch.cuda.synchronize()
                err = rel_err(out, ref)
                t_us = triton.testing.do_bench(fn, warmup=20, rep=200, return_mode="median") * 1000.0
                results[(mname, prec)] = (t_us, err)
            del graph
        set_tf32(False)
        for prec in precs:
            mine = results[("rnnjit rnn_sequence", prec)][0]
            for mname in ("cuDNN nn.RNN + Linear", "rnnjit rnn_sequence", "rnnjit steps in a graph"):
                t_us, err = results[(mname, prec)]
                rows.append((name, mname, prec, t_us, err, t_us / mine))
        torch.cuda.empty_cache()
    print("\nsequence   method                    prec    time us   us/step    error   time/rnn_sequence")
    bad = []
    for name, mname, prec, t_us, err, ratio in rows:
        print(f"{name:10s} {mname:25s} {prec:5s} {t_us:10.1f} {t_us / SEQUENCES[name][0]:9.2f} {err:9.1e}   {ratio:6.2f}x")
        if mname.startswith("rnnjit") and not err <= bound[prec]:
            bad.append(f"{name} {mname} {prec}: error {err:.1e}")
    for line in bad:
        print("ERROR past the bound:", line)
    return 1 if bad else 0


def run(args):
    bf16 = args.dtype == "bf16"
    dtype = torch.bfloat16 if bf16 else torch.float32
    torch.manual_seed(0)
    rnnjit = import_rnnjit(args.lib)
    bound = error_bounds(rnnjit)
    rj = rnnjit.Engine()
    seed = None
    if args.seed:
        spec = importlib.util.spec_from_file_location("seed", args.seed)
        seed = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(seed)
    rows_out = []
    if args.sweep:
        listed = subprocess.run([args.bench, "--sweep", str(args.sweep), "--seed", str(args.seed_sweep), "--list-shapes"],
                                check=True, capture_output=True, text=True).stdout.split()
        shapes = {line: tuple(int(v) for v in line.split(",")) for line in listed}
    else:
        shapes = {name: SHAPES[name] if name in SHAPES else tuple(int(v) for v in name.split("x"))
                  for name in args.shapes.split(",")}
    for name, (B, I, H, O) in shapes.items():
        dev = "cuda"
        i2h, h2o = torch.nn.Linear(I + H, H).to(dev), torch.nn.Linear(H, O).to(dev)
        w1, b1, w2, b2 = (t.detach().to(dtype).contiguous() for t in (i2h.weight, i2h.bias, h2o.weight, h2o.bias))
        xs = [torch.rand(B, I, device=dev).to(dtype) for _ in range(SETS)]
        hs = [torch.rand(B, H, device=dev).to(dtype) for _ in range(SETS)]
        rows = B if B * (I + H) * H <= 4e8 else min(B, 2)
        refs = [reference(xs[k], hs[k], w1, b1, w2, b2, rows) for k in range(SETS)]
        methods = {}
        counter = [0]

        def rotating(fn):
            def call():
                k = counter[0] % SETS
                counter[0] += 1
                return fn(k)
            return call

        if bf16:  # every anchor on the same bf16 tensors
            methods["eager bf16"] = ("bf16", lambda k: eager(xs[k], hs[k], w1, b1, w2, b2, dtype), False)
            if not args.sweep:  # a compile a shape would take the sweep's time
                compiled = torch.compile(lambda x, h: eager(x, h, w1, b1, w2, b2, dtype))
                methods["torch.compile bf16"] = ("bf16", lambda k: compiled(xs[k], hs[k]), False)
        else:
            methods["eager fp32"] = ("fp32", lambda k: eager(xs[k], hs[k], w1, b1, w2, b2), False)
            if not args.sweep:  # the sweep's anchors are eager fp32 and eager tf32 in a graph
                bf = [t.bfloat16() for t in (w1, b1, w2, b2)]
                methods["eager tf32"] = ("tf32", lambda k: eager(xs[k], hs[k], w1, b1, w2, b2), True)
                methods["eager bf16"] = ("bf16", lambda k: eager(xs[k], hs[k], *bf, dtype=torch.bfloat16), False)
                compiled = torch.compile(lambda x, h: eager(x, h, w1, b1, w2, b2))
                methods["torch.compile tf32"] = ("tf32", lambda k: compiled(xs[k], hs[k]), True)
            if seed is not None and not args.sweep:
                methods["seed Triton tf32"] = ("tf32", lambda k: (lambda hn: (hn, seed.linear_triton(hn, w2, b2)))(
                    seed.fused_i2h_tanh(xs[k], hs[k], w1, b1)), True)
        h_outs = [torch.empty(B, H, device=dev, dtype=dtype) for _ in range(SETS)]
        ys = [torch.empty(B, O, device=dev, dtype=dtype) for _ in range(SETS)]
        for prec in ("bf16",) if bf16 else ("tf32", "fp32"):
            def rnnjit_call(k, prec=prec):
                return rj.rnn_step(xs[k], hs[k], w1, b1, w2, b2, h_out=h_outs[k], y=ys[k], precision=prec)
            methods["rnnjit " + prec] = (prec, rnnjit_call, False)

        # Eager inside a CUDA graph (one graph per input set): tf32 for f32 tensors, bf16 for bf16.
        graph_prec = "bf16" if bf16 else "tf32"
        set_tf32(not bf16)
        graphs = []
        for k in range(SETS):
            eager(xs[k], hs[k], w1, b1, w2, b2, dtype)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                out = eager(xs[k], hs[k], w1, b1, w2, b2, dtype)
            graphs.append((g, out))
        methods[f"eager {graph_prec} graph"] = (graph_prec, lambda k: (graphs[k][0].replay(), graphs[k][1])[1],
                                                not bf16)

        results = {}
        for mname, (prec, fn, tf32) in methods.items():
            set_tf32(tf32)
            errs = []
            for k in range(SETS):
                hn, y = fn(k)
                torch.cuda.synchronize()
                errs.append(max(rel_err(hn[:rows], refs[k][0]), rel_err(y[:rows], refs[k][1])))
            t = triton.testing.do_bench(rotating(fn), warmup=50, rep=300, return_mode="median") * 1000.0
            results[mname] = (prec, t, max(errs))
        set_tf32(False)
        if bf16 and not args.sweep:
            # cuBLAS's bf16 GEMM rate on the step's two products alone ([x | h] concatenated
            # beforehand, no bias or tanh): what rnnjit's GEMM rate is held against.
            xh = [torch.cat([xs[k], hs[k]], 1) for k in range(SETS)]
            gemms = rotating(lambda k: (torch.mm(xh[k], w1.t()), torch.mm(hs[k], w2.t())))
            t = triton.testing.do_bench(gemms, warmup=50, rep=300, return_mode="median") * 1000.0
            flop = 2.0 * B * H * (I + H + O)
            mine = results["rnnjit bf16"][1]
            print(f"{name:9s} cuBLAS bf16 GEMMs {t:10.2f} us = {flop / t / 1e6:7.1f} TFLOP/s; rnnjit "
                  f"{flop / mine / 1e6:7.1f} TFLOP/s = {t / mine:.0%} of cuBLAS's rate", flush=True)
            del xh
        for mname, (prec, t, err) in results.items():
            # Each anchor beside rnnjit of its precision; the f32 run's eager bf16 beside rnnjit tf32.
            mine = results.get("rnnjit " + prec) or results["rnnjit tf32"]
            ratio = mine[1] and t / mine[1]
            rows_out.append((name, mname, prec, t, err, ratio))
            print(f"{name:9s} {mname:20s} {prec:5s} {t:10.2f} us  err {err:8.1e}  "
                  f"{'x%.2f' % ratio if not mname.startswith('rnnjit') else '':>8s}", flush=True)
        del graphs, w1, b1, w2, b2, xs, hs, h_outs, ys, i2h, h2o
        torch.cuda.empty_cache()
    if args.sweep:
        sweep_summary(rows_out, ("bf16",) if bf16 else ("tf32", "fp32"))
    else:
        print("\nshape     method               prec    time us    error    anchor/rnnjit")
        for name, mname, prec, t, err, ratio in rows_out:
            print(f"{name:9s} {mname:20s} {prec:5s} {t:10.2f} {err:9.1e}  "
                  f"{('%.2fx' % ratio) if not mname.startswith('rnnjit') else '-':>8s}")
        if args.png:
            chart(rows_out, args.png)
    # rnnjit past its precision's bound fails the run.
    bad = [f"{name} {mname}: error {err:.1e}" for name, mname, prec, t, err, ratio in rows_out
           if mname.startswith("rnnjit") and not err <= bound[prec]]
    for line in bad:
        print("ERROR past the bound:", line)
    return 1 if bad else 0


def sweep_summary(rows, precisions):
    """Per shape PyTorch / rnnjit in each precision, then the worst ratio and the geometric mean (the
    errors are run()'s to judge)."""
    anchor = {"tf32": "eager tf32 graph", "fp32": "eager fp32", "bf16": "eager bf16 graph"}
    by = {(r[0], r[1]): r for r in rows}
    ratios = []
    print("\nshape                   " + "".join(f" {p}: PyTorch us  rnnjit us  ratio  " for p in precisions))
    for name in dict.fromkeys(r[0] for r in rows):
        cells = []
        for prec in precisions:
            mine, theirs = by[(name, "rnnjit " + prec)], by[(name, anchor[prec])]
            ratio = theirs[3] / mine[3]
            ratios.append(ratio)
            cells.append(f"{theirs[3]:16.2f} {mine[3]:10.2f} {ratio:6.2f}x")
        print(f"{name:24s} " + "  ".join(cells))
    geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(f"\n{len(ratios)} ratios over {len(ratios) // len(precisions)} shapes: worst {min(ratios):.2f}x, geometric mean {geomean:.2f}x, "
          f"{sum(r < 1 for r in ratios)} below 1.0")


def chart(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    shapes = sorted({r[0] for r in rows}, key=lambda s: list(SHAPES).index(s) if s in SHAPES else len(SHAPES))
    methods = list(dict.fromkeys(r[1] for r in rows))
    fig, axes = plt.subplots(1, len(shapes), figsize=(4 * len(shapes), 4))
    for ax, s in zip(axes if len(shapes) > 1 else [axes], shapes):
        times = [next((r[3] for r in rows if r[0] == s and r[1] == m), 0) for m in methods]
        ax.barh(methods, times, color=["tab:orange" if m.startswith("rnnjit") else "tab:blue" for m in methods])
        ax.set_xscale("log")
        ax.set_title(s)
        ax.set_xlabel("µs (median, log)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lib", help="a librnnjit_c.so to use instead of the installed package's (a build tree's)")
    p.add_argument("--seed", help="path to the seed's seed_triton_rnn.py (copied beside the bench, not committed)")
    p.add_argument("--shapes", default="kb-v0,b1-4k,mid,kb-large", help="anchor names or BxIxHxO, comma-separated")
    p.add_argument("--png", help="write a chart here")
    p.add_argument("--sweep", type=int, default=0, help="time N random shapes instead (rnnjit-bench --sweep N)")
    p.add_argument("--seed-sweep", type=int, default=1, help="the sweep's seed")
    p.add_argument("--bench", default="build/tools/bench/rnnjit-bench", help="the rnnjit-bench that lists the sweep's shapes")
    p.add_argument("--sequences", help="time these sequences instead (" + ",".join(SEQUENCES) + ")")
    p.add_argument("--dtype", choices=("f32", "bf16"), default="f32",
                   help="the tensors' storage: bf16 times rnnjit bf16 beside PyTorch bf16")
    parsed = p.parse_args()
    sys.exit(sequences(parsed) if parsed.sequences else run(parsed))
