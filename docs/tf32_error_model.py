#!/usr/bin/env python3
"""Float64 model of one RNN step's relative error with TF32 products (docs/kernels.md, "Precision").

The tensor cores read the top 19 bits of each float: TMA-fed wgmma tiles truncate their operands,
register-fed mma.sync tiles round them to nearest (cvt.rna). Inputs are drawn as the GPU tests draw
them (x, h like torch.rand; weights like nn.Linear's init); the error is the tests' metric, the
larger of ||out - ref|| / ||ref|| over h' and y.

    python3 docs/tf32_error_model.py B I H O [draws]
"""
import sys

import numpy as np


def tf32(a, nearest):
    u = a.astype(np.float32).view(np.uint32)
    if nearest:
        u = u + np.uint32(0x1000)  # half a TF32 ulp: the truncation below then rounds (ties away)
    return (u & np.uint32(0xFFFFE000)).view(np.float32).astype(np.float64)


def errors(b, i, h, o, draws, nearest, rng):
    out = np.empty(draws)
    k1, k2 = 1 / np.sqrt(i + h), 1 / np.sqrt(h)
    for d in range(draws):
        w1 = rng.uniform(-k1, k1, (h, i + h)).astype(np.float32)
        b1 = rng.uniform(-k1, k1, h).astype(np.float32)
        w2 = rng.uniform(-k2, k2, (o, h)).astype(np.float32)
        b2 = rng.uniform(-k2, k2, o).astype(np.float32)
        a = rng.uniform(0, 1, (b, i + h)).astype(np.float32)
        h_ref = np.tanh(a.astype(np.float64) @ w1.T.astype(np.float64) + b1)
        y_ref = h_ref @ w2.T.astype(np.float64) + b2
        h_out = np.tanh(tf32(a, nearest) @ tf32(w1, nearest).T + b1).astype(np.float32)
        y_out = tf32(h_out, nearest) @ tf32(w2, nearest).T + b2
        out[d] = max(np.linalg.norm(h_out - h_ref) / np.linalg.norm(h_ref),
                     np.linalg.norm(y_out - y_ref) / np.linalg.norm(y_ref))
    return out


def main():
    b, i, h, o = (int(v) for v in sys.argv[1:5])
    draws = int(sys.argv[5]) if len(sys.argv) > 5 else 2000
    rng = np.random.default_rng(1)
    for nearest in (False, True):
        e = errors(b, i, h, o, draws, nearest, rng)
        print(f"{b}x{i}x{h}x{o} {'nearest ' if nearest else 'truncated'}: median {np.median(e):.2e}, "
              f"largest {e.max():.2e}, past 2e-3 in {np.mean(e > 2e-3):.2%} of {draws} draws")


if __name__ == "__main__":
    main()
