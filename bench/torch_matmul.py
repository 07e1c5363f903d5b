#!/usr/bin/python3
"""OpenBLAS timing baselines: torch.mm of two n x n float32 matrices (bench/ceiling.ts), and
torch.matmul over the step shapes of bench/matmul-shapes.ts.

    /usr/bin/python3 bench/torch_matmul.py --n 1024 --threads 2
        prints one JSON line: {"n", "threads", "ms", "gflops", "blas"}
    /usr/bin/python3 bench/torch_matmul.py --shapes '[{"name", "batch", "M", "K", "N", "a", "b"}, ...]'
        one thread; prints one JSON line per shape: {"name", "gflops"} (per CPU-second, median of
        5 rounds after warm-up); layouts as in bench/matmul-shapes.ts (n, t, t<P>, p<P>)

Run with Debian's python3-torch and OpenBLAS first on LD_LIBRARY_PATH (bench/ceiling.ts sets it up
as bench/mega.ts does). Timing: median of timed runs after warm-up, GFLOP/s = 2 n^3 / time.
"""
import argparse
import json
import time

import torch


def operand(lay, batch, R, C, g):
    """A batch x R x C view with layout lay (n, t, t<P>, p<P>), as bench/matmul-shapes.ts builds it."""
    if lay.startswith("t"):
        pitch = int(lay[1:]) if len(lay) > 1 else R
        return (torch.rand(batch, C, pitch, generator=g) * 2 - 1)[:, :, :R].transpose(1, 2)
    pitch = int(lay[1:]) if len(lay) > 1 else C
    return (torch.rand(batch, R, pitch, generator=g) * 2 - 1)[:, :, :C]


def shapes(cases):
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    for s in cases:
        a = operand(s["a"], s["batch"], s["M"], s["K"], g)
        b = operand(s["b"], s["batch"], s["K"], s["N"], g)
        c = torch.empty(s["batch"], s["M"], s["N"])
        reps = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 0.1 or reps < 3:
            torch.matmul(a, b, out=c)
            reps += 1
        per = max(1, (reps + 1) // 2)
        rounds = []
        for _ in range(5):
            t = time.process_time()
            for _ in range(per):
                torch.matmul(a, b, out=c)
            rounds.append((time.process_time() - t) / per)
        rounds.sort()
        flops = 2 * s["batch"] * s["M"] * s["N"] * s["K"]
        print(json.dumps({"name": s["name"], "gflops": flops / (rounds[2] * 1e9)}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--shapes", type=str, default=None)
    args = ap.parse_args()
    if args.shapes is not None:
        shapes(json.loads(args.shapes))
        return
    torch.set_num_threads(args.threads)
    n = args.n
    g = torch.Generator().manual_seed(0)
    a = torch.rand(n, n, generator=g) * 2 - 1
    b = torch.rand(n, n, generator=g) * 2 - 1
    c = torch.empty(n, n)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.3:
        torch.mm(a, b, out=c)
    times = []
    for _ in range(args.reps):
        t = time.perf_counter()
        torch.mm(a, b, out=c)
        times.append(time.perf_counter() - t)
    times.sort()
    ms = times[len(times) // 2] * 1000
    cfg = torch.__config__.show()
    blas = "BLAS_INFO=" + (cfg.split("BLAS_INFO=")[1].split(",")[0] if "BLAS_INFO=" in cfg else "?")
    print(json.dumps({"n": n, "threads": args.threads, "ms": ms, "gflops": 2 * n**3 / (ms * 1e6), "blas": blas}), flush=True)


if __name__ == "__main__":
    main()
