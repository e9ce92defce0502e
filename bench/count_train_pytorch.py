#!/usr/bin/env python3
"""The counting task trained in PyTorch: the peer of `attnkit train count`.

Same network (embedding 64, learnable positional encoding, one post-norm encoder layer
with 4-head self-attention and a 128-wide feed-forward, a decoder of one
nn.MultiheadAttention block with a learned query, a linear classifier), same data
(X Y d1..d5, digits 0..5, label #X - #Y + 5), SGD lr 0.005 momentum 0.9, batch 64.
Prints one JSON line: steps/s over the timed steps, and the first step (checked every
250) at which 2,000 validation sequences are 99% right.

Usage: python bench/count_train_pytorch.py --threads 2 --steps 3000
"""
import argparse
import json
import time

import torch
import torch.nn as nn

SEQ_LEN, VOCAB, E, H, FF, BATCH = 5, 6, 64, 4, 128, 64


def sample(batch, gen):
    x = torch.randint(0, VOCAB, (batch, SEQ_LEN + 2), generator=gen)
    label = (x[:, 2:] == x[:, :1]).sum(1) - (x[:, 2:] == x[:, 1:2]).sum(1) + SEQ_LEN
    return x, label


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, E)
        self.positional = nn.Parameter(torch.randn(1, SEQ_LEN + 2, E))
        self.encoder = nn.TransformerEncoderLayer(E, H, FF, dropout=0.0, batch_first=True)
        self.query = nn.Parameter(torch.randn(1, 1, E))
        self.decoder = nn.MultiheadAttention(E, H, batch_first=True)
        self.classifier = nn.Linear(E, 2 * SEQ_LEN + 1)

    def forward(self, x):
        h = self.encoder(self.embedding(x) + self.positional)
        q = self.query.expand(x.shape[0], 1, E)
        out, _ = self.decoder(q, h, h, need_weights=False)
        return self.classifier(out[:, 0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    val_x, val_y = sample(2000, torch.Generator().manual_seed(args.seed + 1))
    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.005, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    first_99 = None
    timed = 0.0
    for step in range(1, args.warmup + args.steps + 1):
        x, y = sample(BATCH, gen)
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        if step > args.warmup:
            timed += time.perf_counter() - t0
        if step % 250 == 0 and first_99 is None:
            with torch.no_grad():
                acc = (net(val_x).argmax(-1) == val_y).float().mean().item()
            if acc >= 0.99:
                first_99 = step
    print(json.dumps({
        "framework": f"torch {torch.__version__}",
        "threads": args.threads,
        "steps_timed": args.steps,
        "steps_per_second": args.steps / timed,
        "first_step_val_accuracy_99": first_99,
    }))


if __name__ == "__main__":
    main()
