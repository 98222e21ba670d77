"""The VAE recipe on full MNIST (784-400-20 ReLU, Bernoulli decoder, Adam 1e-3, batch 128) through aecore's job
system, against the same network written as plain PyTorch in the style of pytorch/examples' vae/main.py (a
DataLoader over a TensorDataset, shuffled; torch.randn_like for the noise; default init; output bias at 0; the test
set's loss after each epoch, as the example and aecore's job both take it), same epochs, both timed. Prints one
JSON line each, then their ratio. The plain version trains in a process of its own, as pytorch/examples' script
would run: aecore's training sets glibc's malloc to keep freed blocks for reuse
(aecore/native.py), which would speed up a plain loop run after it in the same process.

    AECORE_DATA_DIR=../shared/data python bench/vae_recipe.py [--epochs 10] [--iw-samples 500] [--threads N]
        [--precision float32 bfloat16]

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

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aecore import RunStore, TrainSettings, TrainingJob, create_model, load_dataset  # noqa: E402


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


def train_plain(data, epochs: int, seed: int) -> tuple[PlainVAE, float]:
    """pytorch/examples' loop: each epoch trains, then takes the test set's loss (aecore's job does both too; the
    example also writes image grids, which needs torchvision, left out)."""
    torch.manual_seed(seed)
    model = PlainVAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.as_tensor(data.x_train)),
                                         batch_size=128, shuffle=True)
    test_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.as_tensor(data.x_test)),
                                              batch_size=128)
    start = time.perf_counter()
    for _ in range(epochs):
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
        print(f"====> epoch test loss: {test_loss / len(test_loader.dataset):.4f}", file=sys.stderr)
    return model, time.perf_counter() - start


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
    ap.add_argument("--plain-out", help=argparse.SUPPRESS)  # the plain run's own process: where its weights go
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset("mnist")
    if args.plain_out:
        plain, seconds = train_plain(data, args.epochs, args.seed)
        torch.save({"state": plain.state_dict(), "seconds": seconds}, args.plain_out)
        return
    ours = {}
    for precision in args.precision:
        job = TrainingJob("vae", {}, data, TrainSettings(epochs=args.epochs, batch_size=128, lr=1e-3, seed=args.seed,
                                                         precision=precision),
                          store=RunStore("/tmp/aecore-bench-runs"))
        job.start().join()
        ours[precision] = job.progress().elapsed
        print(json.dumps({"who": f"aecore vae, precision {precision}", "epochs": args.epochs,
                          "seconds": round(ours[precision], 1), **scores(job.view_model(), data, args.iw_samples)}),
              flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "plain.pt"
        subprocess.run([sys.executable, __file__, "--plain-out", str(out), "--epochs", str(args.epochs),
                        "--seed", str(args.seed), *(["--threads", str(args.threads)] if args.threads else [])],
                       check=True)
        saved = torch.load(out)
    plain, theirs = PlainVAE(), saved["seconds"]
    plain.load_state_dict(saved["state"])
    print(json.dumps({"who": "plain PyTorch (pytorch/examples style)", "epochs": args.epochs,
                      "seconds": round(theirs, 1), **scores(as_aecore(plain), data, args.iw_samples)}), flush=True)
    print(json.dumps({"speedup": {p: round(theirs / t, 2) for p, t in ours.items()},
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
