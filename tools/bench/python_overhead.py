#!/usr/bin/env python3
"""Host cost of a step from Python: the C API called through ctypes with prebuilt arguments (the
floor any Python binding pays) against rnnjit's Python entry points on the same torch tensors.

    python3 tools/bench/python_overhead.py [--shape 8,1024,256,128 ...] [--calls 200] [--reps 40]

Each line is the median over `reps` repetitions of `calls` back-to-back calls (perf_counter_ns,
no synchronisation inside a repetition) of the host time a call, and its overhead over the C
API's. The issue's target: rnnjit.Engine.rnn_step on torch tensors <= 5 us above the C API.
Without a CUDA GPU it says so and exits 0.
"""
import argparse
import ctypes
import statistics
import sys
import time

TARGET_US = 5.0


def measure(fn, calls, reps, sync):
    for _ in range(calls):  # warm-up (and tuning of a new shape)
        fn()
    sync()
    per_call = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        per_call.append((time.perf_counter_ns() - t0) / calls / 1000.0)
        sync()
    return statistics.median(per_call)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", action="append", help="B,I,H,O (default: 8,1024,256,128 and 1,64,64,64)")
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--reps", type=int, default=40)
    p.add_argument("--precision", default="tf32")
    args = p.parse_args()
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: nothing to measure")
        return 0
    if not torch.cuda.is_available():
        print("no CUDA GPU (torch.cuda.is_available() is False): nothing to measure")
        return 0
    import rnnjit
    import rnnjit.torch
    from rnnjit import _lib

    shapes = [tuple(map(int, s.split(","))) for s in (args.shape or ["8,1024,256,128", "1,64,64,64"])]
    engine = rnnjit.torch.engine()
    lib = _lib.load()
    sync = torch.cuda.synchronize
    print(f"device: {torch.cuda.get_device_name()}; torch {torch.__version__}; Python {sys.version.split()[0]}; "
          f"rnnjit {rnnjit.__version__}")
    worst = 0.0
    with torch.no_grad():
        for B, I, H, O in shapes:
            cell = rnnjit.torch.RNNCell(I, H, O, precision=args.precision).cuda()
            w = (cell.i2h.weight, cell.i2h.bias, cell.h2o.weight, cell.h2o.bias)
            x, h = torch.randn(B, I, device="cuda"), torch.randn(B, H, device="cuda")
            h_out, y = torch.empty(B, H, device="cuda"), torch.empty(B, O, device="cuda")
            problem = _lib.Problem(B, I, H, O, _lib.PRECISIONS[args.precision], 0)
            c_args = (engine._handle, ctypes.addressof(problem), *(t.data_ptr() for t in w), x.data_ptr(),
                      h.data_ptr(), h_out.data_ptr(), y.data_ptr(), torch.cuda.current_stream().cuda_stream)
            step = lib.rnnjit_step
            cases = [
                ("C API via ctypes (prebuilt args)", lambda: step(*c_args)),
                ("Engine.rnn_step, outputs given", lambda: engine.rnn_step(x, h, *w, h_out=h_out, y=y,
                                                                            precision=args.precision)),
                ("Engine.rnn_step, h_out=h", lambda: engine.rnn_step(x, h, *w, h_out=h, y=y, precision=args.precision)),
                ("Engine.rnn_step, outputs new", lambda: engine.rnn_step(x, h, *w, precision=args.precision)),
                ("rnnjit.torch.rnn_step", lambda: rnnjit.torch.rnn_step(x, h, *w, args.precision)),
                ("torch.ops.rnnjit.rnn_step", lambda: torch.ops.rnnjit.rnn_step(x, h, *w, args.precision)),
                ("RNNCell(x)", lambda: cell(x)),
                ("torch.empty x2 (reference)", lambda: (torch.empty(B, H, device="cuda"),
                                                        torch.empty(B, O, device="cuda"))),
            ]
            print(f"\nshape {B},{I},{H},{O} {args.precision}: median host us a call over {args.calls} calls x "
                  f"{args.reps}")
            base = None
            for name, fn in cases:
                t = measure(fn, args.calls, args.reps, sync)
                if base is None:
                    base = t
                    print(f"  {name:36s} {t:7.2f}")
                else:
                    print(f"  {name:36s} {t:7.2f}  +{t - base:5.2f}")
                if name == "Engine.rnn_step, outputs given":
                    worst = max(worst, t - base)
    verdict = "meets" if worst <= TARGET_US else "misses"
    print(f"\nEngine.rnn_step (outputs given) over the C API: worst {worst:.2f} us: {verdict} the {TARGET_US:.0f} us "
          "target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
