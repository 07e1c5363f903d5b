#!/usr/bin/python3
"""PyTorch timing baseline for bench/train.ts: one whole training step of a small Mega model
(forward, summed loss, backward, gradients scaled by 1/sample_size, global-norm clipping, fairseq
Adam), written from the project's math (docs/MEGA.md: the Mega layer, the NFFN, gated cross
attention, the LRA classifier, the LM, the NMT model, the losses, clipping and fairseq Adam).

    /usr/bin/python3 bench/torch_train.py '<json config>' [--threads N]
        prints one JSON line: {"ms": median ms per step, "cpu_ms": median CPU ms of the last 5, "steps_per_s", "max_rss_mib", "params"}

The config (written by bench/train.ts from the same resolved model arguments mega-ts trains with):
kind (lra | lm | nmt), layers, D, H, F, Z, N, chunk, norm, prenorm, attn (softmax | laplace),
dropout, attention_dropout, hidden_dropout, activation_dropout, vocab (token models), classes
(lra), input (text | image), B, L (source / block length), T (nmt target length), pad_frac, clip,
wd, lr, label_smoothing, final_norm_affine, steps.
Batches are generated once up front (random ids / pixels of the given shape), as mega-ts's are.
"""
import json
import math
import resource
import sys
import time

import torch
import torch.nn.functional as Fn

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from torch_mega import EMA  # noqa: E402  (the EMA of the layer benchmark)

PAD = 1


def act(name):
    return {"silu": Fn.silu, "gelu": Fn.gelu, "relu": Fn.relu}[name]


class SeqNorm(torch.nn.Module):
    """SequenceNorm on L x B x D: layernorm, scalenorm or batchnorm (statistics over B and L)."""

    def __init__(self, kind, d, affine=True):
        super().__init__()
        self.kind = kind
        if kind == "batchnorm":
            self.norm = torch.nn.BatchNorm1d(d, eps=1e-5, momentum=0.1, affine=affine)
        elif kind == "layernorm":
            self.norm = torch.nn.LayerNorm(d, eps=1e-5, elementwise_affine=affine)
        elif kind == "scalenorm":
            self.scalar = torch.nn.Parameter(torch.ones(1))
        else:
            raise ValueError(kind)

    def forward(self, x):
        if self.kind == "batchnorm":
            return self.norm(x.permute(1, 2, 0)).permute(2, 0, 1)
        if self.kind == "layernorm":
            return self.norm(x)
        return self.scalar * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)


def laplace(x):
    mu, sigma = 0.707107, 0.282095
    return 0.5 * (1.0 + torch.erf((x - mu) / (sigma * math.sqrt(2.0))))


class Mega(torch.nn.Module):
    """The Mega layer (moving-average gated attention), standard dropout, simple relative bias."""

    def __init__(self, c, bidirectional, max_positions):
        super().__init__()
        d, z, h = c["D"], c["Z"], c["H"]
        self.c, self.d, self.z, self.h = c, d, z, h
        self.norm = SeqNorm(c["norm"], d)
        self.move = EMA(d, c["N"], bidirectional)
        self.v_proj = torch.nn.Linear(d, h)
        self.mx_proj = torch.nn.Linear(d, z + h + 2 * d)
        self.h_proj = torch.nn.Linear(h, d)
        for lin in (self.v_proj, self.mx_proj, self.h_proj):
            torch.nn.init.normal_(lin.weight, std=0.02)
            torch.nn.init.zeros_(lin.bias)
        self.gamma = torch.nn.Parameter(torch.randn(2, z) * 0.02)
        self.beta = torch.nn.Parameter(torch.zeros(2, z))
        self.m = c["chunk"] if c["chunk"] > 0 else max_positions
        self.rel = torch.nn.Parameter(torch.randn(2 * self.m - 1) * 0.02)

    def bias(self, n):
        i = torch.arange(n).view(n, 1)
        j = torch.arange(n).view(1, n)
        return self.rel[self.m - 1 + j - i]

    def forward(self, x, pad_mask=None, causal=False):
        c, tr = self.c, self.training
        L, B, D = x.shape
        residual = x
        xn = self.norm(x) if c["prenorm"] else x
        v = Fn.silu(self.v_proj(xn))
        mx = Fn.dropout(self.move(xn, pad_mask), c["dropout"], tr)
        u, zr, hx = torch.split(self.mx_proj(mx), [D, self.z + self.h, D], dim=-1)
        u = torch.sigmoid(u)
        z, r = torch.split(Fn.silu(zr), [self.z, self.h], dim=-1)
        q = (z * self.gamma[0] + self.beta[0]).transpose(0, 1)
        k = (z * self.gamma[1] + self.beta[1]).transpose(0, 1)
        v = v.transpose(0, 1)
        cs = c["chunk"] if 0 < c["chunk"] < L else L
        nc = L // cs
        q, k, v = q.reshape(B, nc, cs, self.z), k.reshape(B, nc, cs, self.z), v.reshape(B, nc, cs, self.h)
        m = pad_mask.view(B, nc, cs) if pad_mask is not None else None
        if c["attn"] == "softmax":
            s = torch.matmul(q * self.z ** -0.5, k.transpose(2, 3)) + self.bias(cs)
            if causal:
                s = s + torch.triu(torch.full((cs, cs), float("-inf")), 1)
            if m is not None:
                m = m & ~m.all(dim=-1, keepdim=True)
                s = s.masked_fill(m.unsqueeze(2), float("-inf"))
            p = torch.softmax(s, dim=-1)
        else:
            if causal:
                n = torch.arange(1, cs + 1, dtype=q.dtype).view(cs, 1)
            elif m is not None:
                n = (~m).sum(-1, keepdim=True).clamp(min=1).unsqueeze(-1).to(q.dtype)
            else:
                n = cs
            p = laplace(torch.matmul(q, k.transpose(2, 3)) / n + self.bias(cs))
            if m is not None:
                p = p.masked_fill(m.unsqueeze(2), 0.0)
            if causal:
                p = p * torch.tril(torch.ones(cs, cs))
        v = Fn.dropout(v, c["hidden_dropout"], tr)
        p = Fn.dropout(p, c["attention_dropout"], tr)
        o = torch.matmul(p, v).reshape(B, L, self.h).transpose(0, 1)
        hh = Fn.dropout(Fn.silu(hx + self.h_proj(o * r)), c["dropout"], tr)
        out = residual + u * (hh - residual)
        return out if c["prenorm"] else self.norm(out)


class CrossAttn(torch.nn.Module):
    """Gated cross attention (NMT decoder), softmax, simple relative bias."""

    def __init__(self, c, max_positions):
        super().__init__()
        d, z = c["D"], c["Z"]
        self.c, self.d, self.z, self.m = c, d, z, max_positions
        self.norm = SeqNorm(c["norm"], d)
        self.k_proj, self.v_proj = torch.nn.Linear(d, z), torch.nn.Linear(d, d)
        self.q_proj, self.h_proj = torch.nn.Linear(d, 2 * d + z), torch.nn.Linear(d, d)
        for lin in (self.k_proj, self.v_proj, self.q_proj, self.h_proj):
            torch.nn.init.normal_(lin.weight, std=0.02)
            torch.nn.init.zeros_(lin.bias)
        self.rel = torch.nn.Parameter(torch.randn(2 * max_positions - 1) * 0.02)

    def forward(self, x, enc, enc_mask):
        c, tr = self.c, self.training
        residual = x
        xn = self.norm(x) if c["prenorm"] else x
        u, r, q = torch.split(self.q_proj(xn), [self.d, self.d, self.z], dim=-1)
        u, r = torch.sigmoid(u), Fn.silu(r)
        k, v = self.k_proj(enc), Fn.silu(self.v_proj(enc))
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
        L2, L1 = q.shape[1], k.shape[1]
        i = torch.arange(L2).view(L2, 1)
        j = torch.arange(L1).view(1, L1)
        s = torch.matmul(q * self.z ** -0.5, k.transpose(1, 2)) + self.rel[self.m - 1 + j - i]
        if enc_mask is not None:
            s = s.masked_fill(enc_mask.unsqueeze(1), float("-inf"))
        p = Fn.dropout(torch.softmax(s, dim=-1), c["attention_dropout"], tr)
        v = Fn.dropout(v, c["hidden_dropout"], tr)
        o = torch.matmul(p, v).transpose(0, 1)
        hh = Fn.dropout(Fn.silu(self.h_proj(o * r)), c["dropout"], tr)
        out = residual + u * (hh - residual)
        return out if c["prenorm"] else self.norm(out)


class NFFN(torch.nn.Module):
    def __init__(self, c, hidden_dropout):
        super().__init__()
        self.c, self.hd = c, hidden_dropout
        self.norm = SeqNorm(c["norm"], c["D"])
        self.fc1, self.fc2 = torch.nn.Linear(c["D"], c["F"]), torch.nn.Linear(c["F"], c["D"])
        for lin in (self.fc1, self.fc2):
            torch.nn.init.normal_(lin.weight, std=0.02)
            torch.nn.init.zeros_(lin.bias)

    def forward(self, x):
        c, tr = self.c, self.training
        h = self.norm(x) if c["prenorm"] else x
        h = Fn.dropout(Fn.silu(self.fc1(h)), self.hd, tr)
        out = Fn.dropout(self.fc2(h), c["dropout"], tr) + x
        return out if c["prenorm"] else self.norm(out)


class Block(torch.nn.Module):
    def __init__(self, c, bidirectional, max_positions, cross, nffn_hidden_dropout):
        super().__init__()
        self.mega = Mega(c, bidirectional, max_positions)
        self.cross = CrossAttn(c, max_positions) if cross else None
        self.nffn = NFFN(c, nffn_hidden_dropout) if c["F"] > 0 else None

    def forward(self, x, pad_mask, causal=False, enc=None, enc_mask=None):
        x = self.mega(x, pad_mask, causal)
        if self.cross is not None:
            x = self.cross(x, enc, enc_mask)
        return self.nffn(x) if self.nffn is not None else x


def pad_mask_of(tokens):
    m = tokens.eq(PAD)
    return m if m.any() else None


def zero_pads(x, m):  # x: B x L x D or L x B x D (time_major)
    return x if m is None else x.masked_fill(m.unsqueeze(-1), 0.0)


class LRA(torch.nn.Module):
    """LRA classifier: embedding, bidirectional layers, final norm (prenorm), mean pooling, head."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        d = c["D"]
        if c["input"] == "image":
            self.w = torch.nn.Parameter(torch.randn(d))
            self.b = torch.nn.Parameter(torch.randn(d) * 0.1)
        else:
            self.embed = torch.nn.Embedding(c["vocab"], d)
            torch.nn.init.normal_(self.embed.weight, std=d ** -0.5)
        self.layers = torch.nn.ModuleList([Block(c, True, c["max_positions"], False, c["hidden_dropout"]) for _ in range(c["layers"])])
        self.final = SeqNorm(c["norm"], d) if c["prenorm"] else None
        self.cls = torch.nn.Linear(d, c["classifier_out_dim"])
        self.proj = torch.nn.Linear(c["classifier_out_dim"], c["classes"], bias=False)
        for lin in (self.cls, self.proj):
            torch.nn.init.xavier_uniform_(lin.weight)
        torch.nn.init.zeros_(self.cls.bias)

    def loss(self, batch):
        c, tr = self.c, self.training
        src, lengths, labels = batch
        if c["input"] == "image":
            m = None
            x = src.unsqueeze(-1) * self.w + self.b
        else:
            m = pad_mask_of(src)
            x = self.embed(src)
        x = zero_pads(Fn.dropout(x, c["dropout"], tr), m).transpose(0, 1)
        for layer in self.layers:
            x = layer(x, m)
        if self.final is not None:
            x = self.final(x)
        if m is not None:
            x = x.masked_fill(m.t().unsqueeze(-1), 0.0)
        rep = x.sum(0) / lengths.to(x.dtype).unsqueeze(1)
        r = Fn.gelu(Fn.dropout(self.cls(rep), c["dropout"], tr))
        logits = self.proj(r)
        return Fn.cross_entropy(logits, labels, reduction="sum"), src.shape[0]


class LM(torch.nn.Module):
    """Decoder-only LM: scaled tied embedding, causal layers, non-affine final norm, tied output."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        d = c["D"]
        self.embed = torch.nn.Embedding(c["vocab"], d, padding_idx=PAD)
        torch.nn.init.normal_(self.embed.weight, std=d ** -0.5)
        with torch.no_grad():
            self.embed.weight[PAD].zero_()
        self.layers = torch.nn.ModuleList([Block(c, False, c["max_positions"], False, c["activation_dropout"]) for _ in range(c["layers"])])
        self.final = SeqNorm(c["norm"], d, affine=c["final_norm_affine"]) if c["prenorm"] else None

    def loss(self, batch):
        c, tr = self.c, self.training
        src, target = batch
        m = pad_mask_of(src)
        x = zero_pads(Fn.dropout(math.sqrt(c["D"]) * self.embed(src), c["dropout"], tr), m).transpose(0, 1)
        for layer in self.layers:
            x = layer(x, m, causal=True)
        if self.final is not None:
            x = self.final(x)
        x = zero_pads(x.transpose(0, 1), m)
        logits = torch.matmul(x, self.embed.weight.t())
        n = int(target.ne(PAD).sum())
        return Fn.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=PAD, reduction="sum"), n


class NMT(torch.nn.Module):
    """Encoder-decoder: one shared scaled embedding, encoder, decoder with cross attention, label smoothing."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        d = c["D"]
        self.embed = torch.nn.Embedding(c["vocab"], d, padding_idx=PAD)
        torch.nn.init.normal_(self.embed.weight, std=d ** -0.5)
        with torch.no_grad():
            self.embed.weight[PAD].zero_()
        self.enc = torch.nn.ModuleList([Block(c, True, c["max_positions"], False, c["activation_dropout"]) for _ in range(c["layers"])])
        self.dec = torch.nn.ModuleList([Block(c, False, c["max_positions"], True, c["activation_dropout"]) for _ in range(c["layers"])])
        self.enc_final = SeqNorm(c["norm"], d) if c["prenorm"] else None
        self.dec_final = SeqNorm(c["norm"], d) if c["prenorm"] else None

    def embed_in(self, tokens):
        m = pad_mask_of(tokens)
        x = Fn.dropout(math.sqrt(self.c["D"]) * self.embed(tokens), self.c["dropout"], self.training)
        return zero_pads(x, m).transpose(0, 1), m

    def loss(self, batch):
        src, prev, target = batch
        x, sm = self.embed_in(src)
        for layer in self.enc:
            x = layer(x, sm)
        if self.enc_final is not None:
            x = self.enc_final(x)
        enc = zero_pads(x.transpose(0, 1), sm).transpose(0, 1)
        y, tm = self.embed_in(prev)
        for layer in self.dec:
            y = layer(y, tm, causal=True, enc=enc, enc_mask=sm)
        if self.dec_final is not None:
            y = self.dec_final(y)
        y = zero_pads(y.transpose(0, 1), tm)
        lprobs = torch.log_softmax(torch.matmul(y, self.embed.weight.t()), dim=-1).reshape(-1, self.c["vocab"])
        t = target.reshape(-1)
        keep = t.ne(PAD)
        nll = -lprobs.gather(1, t.unsqueeze(1)).squeeze(1)
        smooth = -lprobs.sum(-1)
        eps = self.c["label_smoothing"]
        loss = ((1 - eps) * nll + eps / self.c["vocab"] * smooth)[keep].sum()
        return loss, int(keep.sum())


def padded(B, L, vocab, pad_frac, gen):
    """B x L random ids (>= 4) right-padded: lengths uniform in [(1 - pad_frac)·L, L], one full row."""
    t = torch.randint(4, vocab, (B, L), generator=gen)
    lo = max(1, int(round((1 - pad_frac) * L)))
    lengths = torch.randint(lo, L + 1, (B,), generator=gen)
    lengths[0] = L
    for b in range(B):
        t[b, int(lengths[b]):] = PAD
    return t, lengths


def make_batches(c, n):
    gen = torch.Generator().manual_seed(1)
    out = []
    for _ in range(n):
        B, L = c["B"], c["L"]
        if c["kind"] == "lra" and c["input"] == "image":
            out.append((torch.randn(B, L, generator=gen), torch.full((B,), L), torch.randint(0, c["classes"], (B,), generator=gen)))
        elif c["kind"] == "lra":
            t, lengths = padded(B, L, c["vocab"], c["pad_frac"], gen)
            out.append((t, lengths, torch.randint(0, c["classes"], (B,), generator=gen)))
        elif c["kind"] == "lm":
            t, _ = padded(B, L + 1, c["vocab"], c["pad_frac"], gen)
            out.append((t[:, :-1].contiguous(), t[:, 1:].contiguous()))
        else:
            s, _ = padded(B, L, c["vocab"], c["pad_frac"], gen)
            t, _ = padded(B, c["T"] + 1, c["vocab"], c["pad_frac"], gen)
            out.append((s, t[:, :-1].contiguous(), t[:, 1:].contiguous()))
    return out


class FairseqAdam:
    """fairseq's Adam: decoupled decay scaled by lr, eps on the raw sqrt(v)."""

    def __init__(self, params, lr, betas, eps, wd):
        self.params, self.lr, self.b1, self.b2, self.eps, self.wd = params, lr, betas[0], betas[1], eps, wd
        self.state = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
        self.t = 0

    @torch.no_grad()
    def step(self):
        self.t += 1
        bc1, bc2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        step_size = self.lr * math.sqrt(bc2) / bc1
        for p, (m, v) in zip(self.params, self.state):
            if p.grad is None:
                continue
            g = p.grad
            m.mul_(self.b1).add_(g, alpha=1 - self.b1)
            v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
            denom = v.sqrt().add_(self.eps)
            if self.wd != 0:
                p.mul_(1 - self.wd * self.lr)
            p.addcdiv_(m, denom, value=-step_size)


def main():
    c = json.loads(sys.argv[1])
    threads = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = {"lra": LRA, "lm": LM, "nmt": NMT}[c["kind"]](c)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = FairseqAdam(params, c["lr"], (0.9, 0.98), 1e-8, c["wd"])
    batches = make_batches(c, 4)

    def step(i):
        for p in params:
            p.grad = None
        loss, sample = model.loss(batches[i % len(batches)])
        loss.item()  # the trainer reads the loss (divergence check, logging)
        loss.backward()
        with torch.no_grad():
            for p in params:
                if p.grad is not None:
                    p.grad.mul_(1.0 / sample)
            norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params if p.grad is not None))
            coef = min(1.0, c["clip"] / (float(norm) + 1e-6))
            for p in params:
                if p.grad is not None:
                    p.grad.mul_(coef)
        opt.step()

    # warm-up, the same rule as the mega-ts child (bench/train.ts TRAIN_WARMUP): at least
    # warm_min_s, then until warm_steps steps in all or warm_max_s
    t0 = time.perf_counter()
    i = 0
    while True:
        step(i)
        i += 1
        el = time.perf_counter() - t0
        if el >= c.get("warm_max_s", 8) or (el >= c.get("warm_min_s", 2) and i >= c.get("warm_steps", 1000)):
            break
    times, cpu = [], []
    t0 = time.perf_counter()
    while len(times) < c.get("min_steps", 5) or (len(times) < c.get("steps", 15) and time.perf_counter() - t0 < c.get("max_s", 8)):
        t, c0 = time.perf_counter(), time.process_time()
        step(i)
        i += 1
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c0)
    times.sort()
    ms = times[len(times) // 2] * 1000
    cpu_ms = sorted(cpu[-5:])[len(cpu[-5:]) // 2] * 1000
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"ms": ms, "cpu_ms": cpu_ms, "steps_per_s": 1000 / ms, "max_rss_mib": rss, "params": sum(p.numel() for p in params), "threads": threads}), flush=True)


if __name__ == "__main__":
    main()
