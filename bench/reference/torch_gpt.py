"""The selfplay policy in PyTorch eager: the reference `selfplay bench` is compared against.

Same model as policy/src/model.rs: pre-LN GPT, learned positions, tanh-GELU MLP of width 4*d,
output head tied to the token embedding, AdamW (betas 0.9/0.95, weight decay 0.1 on matrices),
global-norm clipping at 1.0. Same measurements and JSON keys as `selfplay bench train|sample`.

    python3 torch_gpt.py train --d-model 128 --layers 2 --heads 4 --ctx 64 --batch 32 --vocab 32 --steps 20
    python3 torch_gpt.py sample --d-model 128 --layers 2 --heads 4 --batch 64 --prompt 16 --new 48
"""

import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(d)
        self.c_attn = nn.Linear(d, 3 * d)
        self.attn_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d)
        self.c_fc = nn.Linear(d, 4 * d)
        self.c_proj = nn.Linear(4 * d, d)

    def attn(self, x, mask, cache):
        b, t, c = x.shape
        q, k, v = self.c_attn(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        if cache is not None:
            if cache.get("k") is not None:
                k = torch.cat([cache["k"], k], 2)
                v = torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        att = (q @ k.transpose(-2, -1)) / math.sqrt(k.shape[-1]) + mask
        y = torch.softmax(att, -1) @ v
        return self.attn_proj(y.transpose(1, 2).reshape(b, t, c))

    def forward(self, x, mask, cache=None):
        x = x + self.attn(self.ln_1(x), mask, cache)
        return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self, vocab, d, layers, heads, context):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(context, d)
        self.h = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)

    def forward(self, tokens, start=0, caches=None):
        b, t = tokens.shape
        pos = torch.arange(start, start + t)
        x = self.wte(tokens) + self.wpe(pos)
        keys = start + t
        mask = torch.full((t, keys), float("-inf")).triu(start + 1)
        for i, block in enumerate(self.h):
            x = block(x, mask, None if caches is None else caches[i])
        return self.ln_f(x) @ self.wte.weight.t()


def model_from(a, context):
    torch.manual_seed(0)
    return Gpt(a.vocab, a.d_model, a.layers, a.heads, context)


def bench_train(a):
    model = model_from(a, a.ctx)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    other = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95))
    tokens = torch.randint(0, a.vocab, (a.batch, a.ctx))
    times = []
    for i in range(a.steps + 2):
        t = time.perf_counter()
        logits = model(tokens[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, a.vocab), tokens[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i >= 2:
            times.append((time.perf_counter() - t) * 1e3)
    return {"ms_per_step_median": statistics.median(times), "ms_per_step_min": min(times), "steps": a.steps}


@torch.no_grad()
def generate(model, prompts, new, cache):
    tokens = prompts
    caches = [dict() for _ in model.h] if cache else None
    logits = model(tokens, 0, caches)
    out = []
    for step in range(new):
        probs = torch.softmax(logits[:, -1], -1)
        nxt = torch.multinomial(probs, 1)
        out.append(nxt)
        tokens = torch.cat([tokens, nxt], 1)
        if step + 1 == new:
            break
        if cache:
            logits = model(nxt, tokens.shape[1] - 1, caches)
        else:
            logits = model(tokens, 0, None)
    return torch.cat(out, 1)


def bench_sample(a):
    model = model_from(a, a.prompt + a.new).eval()
    prompts = torch.randint(0, a.vocab, (a.batch, a.prompt))
    rates = {}
    for cache in (True, False):
        times = []
        for _ in range(a.reps):
            t = time.perf_counter()
            out = generate(model, prompts, a.new, cache)
            times.append(out.numel() / (time.perf_counter() - t))
        rates[cache] = statistics.median(times)
    return {"tokens_per_s": rates[True], "tokens_per_s_no_cache": rates[False], "cache_speedup": rates[True] / rates[False]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["train", "sample"])
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--vocab", type=int, default=32)
    p.add_argument("--ctx", type=int, default=64)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--prompt", type=int, default=16)
    p.add_argument("--new", type=int, default=48)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.batch is None:
        a.batch = 32 if a.what == "train" else 64
    result = bench_train(a) if a.what == "train" else bench_sample(a)
    result.update({"torch": torch.__version__, "threads": torch.get_num_threads()})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
