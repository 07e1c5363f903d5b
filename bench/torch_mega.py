#!/usr/bin/python3
"""PyTorch timing baseline for bench/mega.ts: the Mega layer (MovingAverageGatedAttention) written
from the math of docs/MEGA.md (sections 3-6), not from the reference code.

Supports what the benchmark and its correctness check need: softmax attention, simple relative
position bias, layernorm / scalenorm / rmsnorm, pre- or post-norm, silu, bidirectional or causal
EMA (FFT, no truncation), chunking, padding mask, additive causal mask; no dropout, no
incremental state.

    /usr/bin/python3 bench/torch_mega.py --cases 1024,4,-1;1024,4,128 [--threads 2] [--layer encoder]
        prints one JSON line per case: {"L", "B", "C", "ms", "tokens_per_s", "blas", "max_rss_mib"}
        (max_rss_mib: the process's peak RSS so far, so one case per process for a clean figure).
        --layer encoder times the whole MegaSentenceEncoderLayer: the Mega layer, then the
        post-norm NFFN of bench/torch_train.py (D -> 256 -> D, silu, scalenorm).
    /usr/bin/python3 bench/torch_mega.py --check test/golden/mega_enc_softmax.msgpack ...
        runs the golden case (float64) and compares outputs and gradients (needs python3-msgpack)
    /usr/bin/python3 bench/torch_mega.py --run-json IN.json OUT.json
        runs the encoder layer of the benchmark in float64 on given parameters, input and cotangent
        and writes its output and gradients (test/bench/torch-encoder.test.ts compares them with
        mega-ts's MegaSentenceEncoderLayer: the baseline must compute the same function)

Run with Debian's python3-torch; put OpenBLAS first on LD_LIBRARY_PATH (docs/BACKENDS.md) for the
speed a PyTorch user has. Timing: forward + backward of a cotangent on the output, input and all
parameters requiring gradients, median of timed runs after warm-up.
"""
import argparse
import json
import math
import resource
import sys
import time

import torch
import torch.nn.functional as Fn


class Norm(torch.nn.Module):
    def __init__(self, kind, d, eps=1e-5):
        super().__init__()
        self.kind, self.eps = kind, eps
        if kind == "layernorm":
            self.weight = torch.nn.Parameter(torch.ones(d))
            self.bias = torch.nn.Parameter(torch.zeros(d))
        elif kind == "scalenorm":
            self.scalar = torch.nn.Parameter(torch.ones(1))
        elif kind == "rmsnorm":
            self.weight = torch.nn.Parameter(torch.ones(d))
        else:
            raise ValueError(kind)

    def forward(self, x):
        if self.kind == "layernorm":
            return Fn.layer_norm(x, x.shape[-1:], self.weight, self.bias, self.eps)
        r = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.scalar * x * r if self.kind == "scalenorm" else x * self.weight * r


class SequenceNorm(torch.nn.Module):
    def __init__(self, kind, d):
        super().__init__()
        self.norm = Norm(kind, d)

    def forward(self, x):
        return self.norm(x)


class EMA(torch.nn.Module):
    """MultiHeadEMA, spec section 5 (full-sequence path, no truncation)."""

    def __init__(self, d, n, bidirectional):
        super().__init__()
        self.d, self.n, self.bidirectional = d, n, bidirectional
        dk = 2 * d if bidirectional else d
        self.delta = torch.nn.Parameter(torch.randn(dk, n, 1) * 0.2)
        self.alpha = torch.nn.Parameter(torch.randn(dk, n, 1) * 0.2)
        sign = torch.tensor([1.0 if i % 2 == 0 else -1.0 for i in range(n)]).view(1, n, 1)
        self.beta = torch.nn.Parameter(torch.randn(dk, n, 1) * 0.02 + sign)
        self.gamma = torch.nn.Parameter(torch.randn(dk, n))
        self.omega = torch.nn.Parameter(torch.randn(d))
        self.scale = math.sqrt(1.0 / n)

    def kernel(self, length):
        p = torch.sigmoid(self.delta)
        q = 1.0 - p * torch.sigmoid(self.alpha)
        vander = torch.arange(length, dtype=p.dtype).view(1, 1, length) * torch.log(q)
        k = (p * self.beta) * torch.exp(vander)
        return torch.einsum("dnl,dn->dl", k, self.gamma * self.scale)

    def forward(self, x, padding_mask=None):
        L, B, D = x.shape
        residual = x * self.omega
        xt = x.permute(1, 2, 0)  # B x D x L
        if padding_mask is not None:
            xt = xt.masked_fill(padding_mask.unsqueeze(1), 0.0)
        k = self.kernel(L)
        if self.bidirectional:
            k1, k2 = torch.split(k, [D, D], dim=0)
            k = Fn.pad(k1, (L - 1, 0)) + Fn.pad(k2.flip(-1), (0, L - 1))
            xt = Fn.pad(xt, (L - 1, 0))
            fft_len = 4 * L
            s = 2 * L - 2
        else:
            fft_len, s = 2 * L, 0
        kf = torch.fft.rfft(k, n=fft_len)
        xf = torch.fft.rfft(xt, n=fft_len)
        y = torch.fft.irfft(xf * kf, n=fft_len)[..., s:s + L]
        return Fn.silu(y.permute(2, 0, 1) + residual)


class MegaLayer(torch.nn.Module):
    """MovingAverageGatedAttention, spec section 6 (softmax, simple bias)."""

    def __init__(self, d, z, h, n, chunk, max_positions, bidirectional=True, norm="scalenorm", prenorm=False):
        super().__init__()
        self.d, self.z, self.h, self.chunk, self.prenorm = d, z, h, chunk, prenorm
        self.norm = SequenceNorm(norm, d)
        self.move = EMA(d, n, bidirectional)
        self.v_proj = torch.nn.Linear(d, h)
        self.mx_proj = torch.nn.Linear(d, z + h + 2 * d)
        self.h_proj = torch.nn.Linear(h, d)
        for lin in (self.v_proj, self.mx_proj, self.h_proj):
            torch.nn.init.normal_(lin.weight, std=0.02)
            torch.nn.init.zeros_(lin.bias)
        self.gamma = torch.nn.Parameter(torch.randn(2, z) * 0.02)
        self.beta = torch.nn.Parameter(torch.zeros(2, z))
        m = chunk if chunk > 0 else max_positions
        self.max_positions = m
        self.rel_pos_bias = torch.nn.Module()
        self.rel_pos_bias.rel_pos_bias = torch.nn.Parameter(torch.randn(2 * m - 1) * 0.02)
        self.scaling = z ** -0.5

    def bias(self, n):
        m = self.max_positions
        i = torch.arange(n).view(n, 1)
        j = torch.arange(n).view(1, n)
        return self.rel_pos_bias.rel_pos_bias[m - 1 + j - i]

    def forward(self, x, padding_mask=None, attn_mask=None):
        L, B, D = x.shape
        residual = x
        xn = self.norm(x) if self.prenorm else x
        v = Fn.silu(self.v_proj(xn))
        mx = self.move(xn, padding_mask)
        base = self.mx_proj(mx)
        u, zr, hx = torch.split(base, [D, self.z + self.h, D], dim=-1)
        u = torch.sigmoid(u)
        z, r = torch.split(Fn.silu(zr), [self.z, self.h], dim=-1)
        q = (z * self.gamma[0] + self.beta[0]).transpose(0, 1)  # B x L x Z
        k = (z * self.gamma[1] + self.beta[1]).transpose(0, 1)
        v = v.transpose(0, 1)  # B x L x H
        c = self.chunk if 0 < self.chunk < L else L
        nc = L // c
        q = q.reshape(B, nc, c, self.z)
        k = k.reshape(B, nc, c, self.z)
        v = v.reshape(B, nc, c, self.h)
        s = torch.matmul(q * self.scaling, k.transpose(2, 3)) + self.bias(c)
        if attn_mask is not None:
            s = s + attn_mask
        if padding_mask is not None:
            m = padding_mask.view(B, nc, c)
            m = m & ~m.all(dim=-1, keepdim=True)  # fully padded chunks: no mask
            s = s.masked_fill(m.unsqueeze(2), float("-inf"))
        p = torch.softmax(s, dim=-1)
        o = torch.matmul(p, v).reshape(B, L, self.h).transpose(0, 1)
        hh = Fn.silu(hx + self.h_proj(o * r))
        out = residual + u * (hh - residual)
        if not self.prenorm:
            out = self.norm(out)
        return out, p


class EncoderLayer(torch.nn.Module):
    """MegaSentenceEncoderLayer (docs/MEGA.md section 7.3): the Mega layer, then the NFFN."""

    def __init__(self, d, z, h, n, f, chunk, max_positions):
        super().__init__()
        from torch_train import NFFN  # lazy: torch_train imports this file's EMA

        self.mega = MegaLayer(d, z, h, n, chunk, max_positions)
        self.nffn = NFFN({"norm": "scalenorm", "D": d, "F": f, "prenorm": False, "dropout": 0.0}, 0.0)

    def forward(self, x):
        out, p = self.mega(x)
        return self.nffn(out), p


def bench(cases, threads, kind="attention"):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    for L, B, C in cases:
        if kind == "encoder":
            layer = EncoderLayer(128, 64, 256, 16, 256, C, max(L, 1))
        else:
            layer = MegaLayer(128, 64, 256, 16, C, max(L, 1))
        x = torch.randn(L, B, 128, requires_grad=True)
        g = torch.randn(L, B, 128)

        def step():
            layer.zero_grad(set_to_none=True)
            x.grad = None
            out, _ = layer(x)
            out.backward(g)

        t0 = time.perf_counter()
        while True:  # warm-up: 2 runs and at least 0.5 s
            step()
            step()
            if time.perf_counter() - t0 > 0.5:
                break
        times = []
        t0 = time.perf_counter()
        while len(times) < 5 or (len(times) < 15 and time.perf_counter() - t0 < 6):
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
        times.sort()
        ms = times[len(times) // 2] * 1000
        blas = ""
        try:
            cfg = torch.__config__.show()
            blas = "BLAS_INFO=" + (cfg.split("BLAS_INFO=")[1].split(",")[0] if "BLAS_INFO=" in cfg else "?")
        except Exception:  # pragma: no cover
            pass
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"L": L, "B": B, "C": C, "ms": ms, "tokens_per_s": L * B / (ms / 1000), "threads": threads, "blas": blas,
                          "max_rss_mib": rss}), flush=True)


def check(paths):
    import msgpack
    import numpy as np

    def tensor(t):
        dt = {"f64": np.float64, "f32": np.float32, "bool": np.uint8, "i64": np.int64}[t["dtype"]]
        a = np.frombuffer(t["data"], dtype=dt).reshape(t["shape"])
        return torch.from_numpy(a.copy()).bool() if t["dtype"] == "bool" else torch.from_numpy(a.copy())

    ok = True
    for path in paths:
        d = msgpack.unpackb(open(path, "rb").read(), raw=False)
        c = d["config"]
        assert c["attention_activation"] == "softmax" and c["rel_pos_bias"] == "simple" and c["truncation"] is None
        torch.set_default_dtype(torch.float64)
        layer = MegaLayer(c["embed_dim"], c["zdim"], c["hdim"], c["ndim"], c["chunk_size"], c["max_positions"],
                          c["bidirectional"], c["norm_type"], c["prenorm"])
        sd = {k: tensor(v) for k, v in d["params"].items()}
        layer.load_state_dict(sd, strict=True)
        inp = {k: tensor(v) for k, v in d["inputs"].items()}
        x = inp["x"].requires_grad_(True)
        out, p = layer(x, inp.get("padding_mask"), inp.get("attn_mask"))
        outs = {"out": out, "attn_weights": p}
        cot = {k: tensor(v) for k, v in d["cotangent"].items()}
        torch.autograd.backward([outs[k] for k in cot], [cot[k] for k in cot])
        grads = dict(layer.named_parameters())
        worst = 0.0
        for name, ref in list(d["outputs"].items()) + list(d["grads"].items()):
            r = tensor(ref)
            if name in outs:
                got = outs[name].detach()
            elif name == "x":
                got = x.grad
            else:
                got = grads[name].grad
            err = (got - r).abs().max().item() / max(r.abs().max().item(), 1e-300)
            worst = max(worst, err)
        passed = worst <= 1e-9
        ok &= passed
        print(f"{path}: max relative error {worst:.2e} ({'ok' if passed else 'FAIL'})")
    return ok


def run_json(src, dst):
    """IN: {"config": {D, Z, H, N, F, C, max_positions}, "params": {fairseq name: {shape, data}},
    "x": {shape, data}, "cotangent": [flat]}; OUT: {"out": [flat], "x_grad": [flat], "grads": {name: [flat]}}."""
    torch.set_default_dtype(torch.float64)
    d = json.load(open(src))
    c = d["config"]
    layer = EncoderLayer(c["D"], c["Z"], c["H"], c["N"], c["F"], c["C"], c["max_positions"])
    own = dict(layer.named_parameters())

    def name(n):  # fairseq names -> this file's modules
        n = n.replace("mega_layer.", "mega.", 1)
        return n.replace("nffn.norm.norm.", "nffn.norm.", 1)

    if sorted(own) != sorted(name(n) for n in d["params"]):
        raise SystemExit(f"parameters differ: {sorted(own)} vs {sorted(d['params'])}")
    with torch.no_grad():
        for n, p in d["params"].items():
            own[name(n)].copy_(torch.tensor(p["data"]).view(p["shape"]))
    x = torch.tensor(d["x"]["data"]).view(d["x"]["shape"]).requires_grad_(True)
    out, _ = layer(x)
    out.backward(torch.tensor(d["cotangent"]).view(out.shape))
    res = {"out": out.detach().flatten().tolist(), "x_grad": x.grad.flatten().tolist(),
           "grads": {n: own[name(n)].grad.flatten().tolist() for n in d["params"]}}
    json.dump(res, open(dst, "w"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", help="L,B,C;L,B,C...")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--check", nargs="*")
    ap.add_argument("--layer", choices=["attention", "encoder"], default="attention")
    ap.add_argument("--run-json", nargs=2, metavar=("IN", "OUT"))
    a = ap.parse_args()
    if a.check:
        sys.exit(0 if check(a.check) else 1)
    if a.run_json:
        return run_json(*a.run_json)
    cases = [tuple(int(v) for v in c.split(",")) for c in (a.cases or "1024,4,-1;1024,4,128").split(";")]
    bench(cases, a.threads, a.layer)


if __name__ == "__main__":
    main()
