#!/usr/bin/python3
"""OpenBLAS timing baseline for bench/ceiling.ts: torch.mm of two n x n float32 matrices.

    /usr/bin/python3 bench/torch_matmul.py --n 1024 --threads 2
        prints one JSON line: {"n", "threads", "ms", "gflops", "blas"}

Run with Debian's python3-torch and OpenBLAS first on LD_LIBRARY_PATH (bench/ceiling.ts sets it up
as bench/mega.ts does). Timing: median of timed runs after warm-up, GFLOP/s = 2 n^3 / time.
"""
import argparse
import json
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=9)
    args = ap.parse_args()
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
