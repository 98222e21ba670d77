"""The VAE recipe on full MNIST (784-400-20 ReLU, Bernoulli decoder, Adam 1e-3, batch 128) through aecore's job
system, against the same network written as plain PyTorch in the style of pytorch/examples' vae/main.py (a
DataLoader over a TensorDataset, shuffled; torch.randn_like for the noise; default init; output bias at 0; the test
set's loss after each epoch, as the example and aecore's job both take it), same epochs, both timed. Prints one
JSON line each, then their ratio. The plain version trains in a process of its own, as pytorch/examples' script
would run: aecore's training sets glibc's malloc to keep freed blocks for reuse
(aecore/native.py), which would speed up a plain loop run after it in the same process.

    AECORE_DATA_DIR=../shared/data python bench/vae_recipe.py [--epochs 10] [--iw-samples 500] [--threads N]
        [--precision float32 bfloat16] [--interleave]

``--interleave`` (one precision): the two train in two processes that take turns an epoch each (aecore's epoch 1,
the plain epoch 1, aecore's epoch 2, ...), each timing its own epochs only, so that both meet the same stretches of
the machine. Run one after the other, one version's time moved by up to 1.7x between runs minutes apart on this VM
(bench/README), and so did the ratio.

Both are scored by aecore's own evaluation (test -ELBO with one draw of z, and the K-sample importance-weighted
NLL), so the numbers differ only by training.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aecore import RunStore, TrainSettings, TrainingJob, create_model, load_dataset, training  # noqa: E402


class PlainVAE(nn.Module):
    """pytorch/examples' VAE, written out as that example does."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def decode(self, z):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


def plain_loss(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


class Turns:
    """Epoch-by-epoch turns with another process (``--interleave``): :meth:`wait` blocks until the controller says
    go on stdin; :meth:`done` reports the epoch's seconds on stdout. The seconds counted are those between the two,
    so the time spent waiting for the other process's turn is not."""

    def __init__(self, enabled: bool):
        self.enabled, self.seconds, self._go, self._ready = enabled, 0.0, time.perf_counter(), False

    def wait(self) -> None:
        if self.enabled:
            if not self._ready:  # set up: the controller starts no epoch before both processes are
                print("ready", flush=True)
                self._ready = True
            sys.stdin.readline()
        self._go = time.perf_counter()

    def done(self, last: bool = False) -> None:
        took = time.perf_counter() - self._go
        self.seconds += took
        if self.enabled:
            print(f"{took:.4f}", flush=True)
            if not last:
                self.wait()
        else:  # the next epoch counts from here: counted from the start, run E of the plain loop was counted E times
            self._go = time.perf_counter()


def train_plain(data, epochs: int, seed: int, turns: Turns | None = None) -> tuple[PlainVAE, float]:
    """pytorch/examples' loop: each epoch trains, then takes the test set's loss (aecore's job does both too; the
    example also writes image grids, which needs torchvision, left out)."""
    torch.manual_seed(seed)
    model = PlainVAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.as_tensor(data.x_train)),
                                         batch_size=128, shuffle=True)
    test_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.as_tensor(data.x_test)),
                                              batch_size=128)
    turns = turns or Turns(False)
    turns.wait()
    for epoch in range(1, epochs + 1):
        model.train()
        for (x,) in loader:
            opt.zero_grad()
            recon, mu, logvar = model(x)
            plain_loss(recon, x, mu, logvar).backward()
            opt.step()
        model.eval()
        test_loss = 0.0
        with torch.no_grad():
            for (x,) in test_loader:
                recon, mu, logvar = model(x)
                test_loss += plain_loss(recon, x, mu, logvar).item()
        turns.done(last=epoch == epochs)
        print(f"====> epoch test loss: {test_loss / len(test_loader.dataset):.4f}", file=sys.stderr)
    return model, turns.seconds


def train_ours(data, epochs: int, seed: int, precision: str, turns: Turns | None = None) -> tuple[Any, float]:
    """aecore's job on the recipe; with ``turns``, the job's thread waits for its turn at the end of each epoch (after
    the epoch's test pass), and the seconds are the turns' (the job's start included)."""
    job = TrainingJob("vae", {}, data, TrainSettings(epochs=epochs, batch_size=128, lr=1e-3, seed=seed,
                                                     precision=precision),
                      store=RunStore("/tmp/aecore-bench-runs"))
    if turns is None:
        job.start().join()
        return job, job.progress().elapsed
    snapshot = training._snapshot

    def end_of_epoch(model, epoch, snapshots):
        snapshot(model, epoch, snapshots)
        if epoch:  # not the start's snapshot (epoch 0)
            turns.done(last=epoch == epochs)
    training._snapshot = end_of_epoch
    turns.wait()
    job.start().join()
    return job, turns.seconds


def as_aecore(plain: PlainVAE):
    """The plain network's weights in aecore's VAE, so both are scored by the same code."""
    vae = create_model("vae")
    sd = {"encoder.0.layers.0.weight": plain.fc1.weight, "encoder.0.layers.0.bias": plain.fc1.bias,
          "encoder.1.weight": torch.cat([plain.fc21.weight, plain.fc22.weight]),
          "encoder.1.bias": torch.cat([plain.fc21.bias, plain.fc22.bias]),
          "decoder.layers.0.weight": plain.fc3.weight, "decoder.layers.0.bias": plain.fc3.bias,
          "decoder.layers.1.weight": plain.fc4.weight, "decoder.layers.1.bias": plain.fc4.bias}
    vae.load_state_dict({k: v.detach() for k, v in sd.items()})
    return vae.eval()


def scores(model, data, k: int) -> dict:
    m = model.evaluate(data, iw_samples=k)
    return {"elbo_loss": round(m["elbo_loss"], 2), "nll_iw": round(m["nll_iw"], 2), "iw_samples": k,
            "active_units": m["active_units"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--iw-samples", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--precision", nargs="+", default=["float32", "bfloat16"], choices=("float32", "auto", "bfloat16"),
                    help="aecore's runs, one per precision (mixed bfloat16 halves the products' time on CPUs with "
                         "AVX-512 BF16 or AMX)")
    ap.add_argument("--interleave", action="store_true",
                    help="the two take turns an epoch each, in two processes (one precision)")
    ap.add_argument("--plain-out", help=argparse.SUPPRESS)  # the plain run's own process: where its weights go
    ap.add_argument("--ours-out", help=argparse.SUPPRESS)  # aecore's own process (--interleave): where its go
    args = ap.parse_args()
    if args.interleave and len(args.precision) != 1:
        ap.error("--interleave takes one --precision")
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset("mnist")
    if args.plain_out:
        plain, seconds = train_plain(data, args.epochs, args.seed, Turns(args.interleave))
        torch.save({"state": plain.state_dict(), "seconds": seconds}, args.plain_out)
        return
    if args.ours_out:
        job, seconds = train_ours(data, args.epochs, args.seed, args.precision[0], Turns(True))
        torch.save({"state": job.view_model().state_dict(), "seconds": seconds}, args.ours_out)
        return
    common = ["--epochs", str(args.epochs), "--seed", str(args.seed),
              *(["--threads", str(args.threads)] if args.threads else [])]
    ours = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.interleave:
            precision = args.precision[0]
            children = [subprocess.Popen([sys.executable, __file__, flag, str(Path(tmp) / name), *common,
                                          "--precision", precision, "--interleave"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                        for flag, name in (("--ours-out", "ours.pt"), ("--plain-out", "plain.pt"))]
            # both set up first: aecore's first epoch ran while the plain process was still importing torch and
            # loading MNIST (2.6-2.9 s against 1.4-1.8 s for its later epochs)
            if [child.stdout.readline().strip() for child in children] != ["ready", "ready"]:
                raise SystemExit("a run failed to start")
            epochs = []  # (aecore's seconds, the plain loop's) of each epoch
            for _ in range(args.epochs):
                pair = []
                for child in children:  # aecore's epoch, then the plain one: each in the other's conditions
                    child.stdin.write("go\n")
                    child.stdin.flush()
                    pair.append(float(child.stdout.readline() or "nan"))
                epochs.append(pair)
            if any(child.wait() for child in children):
                raise SystemExit("a run failed")
            saved = torch.load(Path(tmp) / "ours.pt")
            model = create_model("vae")
            model.load_state_dict(saved["state"])
            ours[precision] = saved["seconds"]
            print(json.dumps({"who": f"aecore vae, precision {precision}, interleaved", "epochs": args.epochs,
                              "seconds": round(saved["seconds"], 1), **scores(model.eval(), data, args.iw_samples)}),
                  flush=True)
        else:
            for precision in args.precision:
                job, ours[precision] = train_ours(data, args.epochs, args.seed, precision)
                print(json.dumps({"who": f"aecore vae, precision {precision}", "epochs": args.epochs,
                                  "seconds": round(ours[precision], 1),
                                  **scores(job.view_model(), data, args.iw_samples)}), flush=True)
            subprocess.run([sys.executable, __file__, "--plain-out", str(Path(tmp) / "plain.pt"), *common],
                           check=True)
        saved = torch.load(Path(tmp) / "plain.pt")
    plain, theirs = PlainVAE(), saved["seconds"]
    plain.load_state_dict(saved["state"])
    print(json.dumps({"who": "plain PyTorch (pytorch/examples style)" + (", interleaved" if args.interleave else ""),
                      "epochs": args.epochs,
                      "seconds": round(theirs, 1), **scores(as_aecore(plain), data, args.iw_samples)}), flush=True)
    extra = {}
    if args.interleave:  # each epoch's ratio: how much of the spread is the machine's, epoch to epoch
        ratios = sorted(b / a for a, b in epochs)
        extra = {"epoch_ratio": {"min": round(ratios[0], 2), "median": round(ratios[len(ratios) // 2], 2),
                                 "max": round(ratios[-1], 2)},
                 "first_epoch_seconds": [round(v, 2) for v in epochs[0]]}
    print(json.dumps({"speedup": {p: round(theirs / t, 2) for p, t in ours.items()},
                      "threads": torch.get_num_threads(), **extra}))


if __name__ == "__main__":
    main()
