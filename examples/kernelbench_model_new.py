#!/usr/bin/env python3
"""KernelBench's level-3 VanillaRNN (33_VanillaRNN) on rnnjit: its `Model` as KernelBench states
it, and `ModelNew`, the same model on rnnjit.torch.RNNCell; checked the way KernelBench checks
(both built from one seed, the same inputs, torch.allclose(atol=1e-2, rtol=1e-2) over several
random trials) and timed side by side (CUDA events around each call, medians).

    python3 examples/kernelbench_model_new.py [--shape kb-v0|kb-large] [--precision tf32|fp32]
                                              [--trials 5] [--timing-trials 100]

kb-v0 is the task's first version (batch 8, input 1024, hidden 256, output 128; forward(x) carries
the state), kb-large its current one (256, 16384, 16384, 8192; forward(x, initial_hidden)).
Without a CUDA GPU it says so and exits 0.
"""
import argparse
import statistics
import sys

SHAPES = {"kb-v0": (8, 1024, 256, 128), "kb-large": (256, 16384, 16384, 8192)}

# KernelBench's module-level sizes, which Model reads (set from --shape in main()).
batch_size, input_size, hidden_size, output_size = SHAPES["kb-v0"]
shape_name = "kb-v0"

try:
    import torch
    import torch.nn as nn
except ImportError:  # the package works without PyTorch; this example does not
    torch = None

if torch is not None:
    import rnnjit.torch

    class Model(nn.Module):
        """KernelBench's VanillaRNN: the state is a plain attribute drawn at construction (before
        the layers, so the seed's draws land as KernelBench's do) and carried across calls."""

        def __init__(self, input_size: int, hidden_size: int, output_size: int):
            super().__init__()
            self.input_size = input_size
            self.hidden_size = hidden_size
            self.output_size = output_size
            self.hidden = torch.randn((batch_size, hidden_size))
            self.i2h = nn.Linear(input_size + hidden_size, hidden_size)
            self.h2o = nn.Linear(hidden_size, output_size)
            self.tanh = nn.Tanh()

        def forward(self, x: torch.Tensor, initial_hidden=None) -> torch.Tensor:
            if initial_hidden is not None:
                self.hidden.copy_(initial_hidden)
            self.hidden = self.hidden.to(x.device).to(x.dtype)
            combined = torch.cat((x, self.hidden), dim=1)
            self.hidden = self.tanh(self.i2h(combined))
            return self.h2o(self.hidden)

    class ModelNew(rnnjit.torch.RNNCell):
        """The same model on rnnjit: i2h and h2o as Model names them (its state_dict loads), the
        state drawn first as Model draws it, one rnnjit step a forward."""

        precision = "tf32"

        def __init__(self, input_size: int, hidden_size: int, output_size: int):
            hidden = torch.randn((batch_size, hidden_size))
            super().__init__(input_size, hidden_size, output_size, precision=ModelNew.precision)
            self.hidden = hidden

    def get_inputs():
        if shape_name == "kb-v0":
            return [torch.randn(batch_size, input_size)]
        return [torch.rand(batch_size, input_size), torch.rand(batch_size, hidden_size)]

    def get_init_inputs():
        return [input_size, hidden_size, output_size]


def set_shape(name):
    global batch_size, input_size, hidden_size, output_size, shape_name
    batch_size, input_size, hidden_size, output_size = SHAPES[name]
    shape_name = name


def set_seed(seed):
    torch.manual_seed(seed)
    torch.cuda.manual_seed(seed)


def check(model, model_new, trials, seed=42):
    """KernelBench's correctness check: per trial a fresh seed, fresh inputs, both models on the
    same inputs, shapes equal and torch.allclose(atol=1e-2, rtol=1e-2). Returns (passed, max |diff|)."""
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    passed = 0
    with torch.no_grad():
        for _ in range(trials):
            trial_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
            set_seed(trial_seed)
            inputs = [t.cuda() for t in get_inputs()]
            out = model(*inputs)
            torch.cuda.synchronize()
            out_new = model_new(*inputs)
            torch.cuda.synchronize()
            if out.shape != out_new.shape:
                print(f"  shape mismatch: {tuple(out.shape)} vs {tuple(out_new.shape)}")
                continue
            worst = max(worst, (out - out_new).abs().max().item())
            passed += bool(torch.allclose(out, out_new, atol=1e-2, rtol=1e-2))
    return passed, worst


def time_model(model, inputs, trials, warmup=10):
    """Median µs of one call: CUDA events around each call, synchronised between calls (as
    KernelBench times), after a warm-up."""
    times = []
    with torch.no_grad():
        for _ in range(warmup):
            model(*inputs)
        torch.cuda.synchronize()
        for _ in range(trials):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            model(*inputs)
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) * 1000.0)
    return statistics.median(times)


def time_back_to_back(model, inputs, calls=200, reps=5):
    """Median µs a call over `calls` calls issued back to back (what a recurrent loop sees)."""
    out = []
    with torch.no_grad():
        for _ in range(reps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(calls):
                model(*inputs)
            end.record()
            torch.cuda.synchronize()
            out.append(start.elapsed_time(end) * 1000.0 / calls)
    return statistics.median(out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", choices=SHAPES, default="kb-v0")
    p.add_argument("--precision", choices=("tf32", "fp32"), default="tf32")
    p.add_argument("--trials", type=int, default=5, help="correctness trials (KernelBench: 5)")
    p.add_argument("--timing-trials", type=int, default=100, help="timed calls (KernelBench: 100)")
    args = p.parse_args()
    if torch is None:
        print("PyTorch is not installed: nothing to run (pip install torch)")
        return 0
    if not torch.cuda.is_available():
        print("no CUDA GPU (torch.cuda.is_available() is False): nothing to run")
        return 0
    set_shape(args.shape)
    ModelNew.precision = args.precision
    print(f"{args.shape}: batch {batch_size}, input {input_size}, hidden {hidden_size}, output {output_size}; "
          f"rnnjit {args.precision}; {torch.cuda.get_device_name()}")

    set_seed(42)
    model = Model(*get_init_inputs()).cuda()
    set_seed(42)
    model_new = ModelNew(*get_init_inputs()).cuda()
    # The first call of a shape tunes (or finds the tuning in the cache): do it now, not in a trial.
    rnnjit.torch.engine().tune(batch_size, input_size, hidden_size, output_size, precision=args.precision)
    passed, worst = check(model, model_new, args.trials)
    verdict = "PASS" if passed == args.trials else "FAIL"
    print(f"check (KernelBench: allclose atol=rtol=1e-2, {args.trials} trials): {passed}/{args.trials} {verdict}, "
          f"max |diff| {worst:.2e}")

    set_seed(0)
    inputs = [t.cuda() for t in get_inputs()]
    t_model = time_model(model, inputs, args.timing_trials)
    t_new = time_model(model_new, inputs, args.timing_trials)
    b_model = time_back_to_back(model, inputs)
    b_new = time_back_to_back(model_new, inputs)
    print(f"{'':24s}{'per call (events, median)':>28s}{'back to back':>16s}")
    print(f"{'Model (PyTorch eager)':24s}{t_model:24.1f} us{b_model:12.1f} us")
    print(f"{'ModelNew (rnnjit)':24s}{t_new:24.1f} us{b_new:12.1f} us")
    print(f"speed-up: {t_model / t_new:.2f}x per call, {b_model / b_new:.2f}x back to back")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
