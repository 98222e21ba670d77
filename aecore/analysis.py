"""What a trained autoencoder learned, as arrays for the views: unit statistics, top-activating samples, activation
maximisation, encoder Jacobians and contraction, and denoising scores. UI-free; inputs are (N, D) pixels in [0, 1]."""
from __future__ import annotations

import itertools

import numpy as np
import torch

from .noise import corrupt, psnr


def _device(model: torch.nn.Module) -> torch.device:
    return next(itertools.chain(model.parameters(), model.buffers())).device


@torch.no_grad()
def unit_activations(model, x: np.ndarray | torch.Tensor, batch_size: int = 2048,
                     outputs: bool = False) -> np.ndarray | None:
    """(N, units) first-layer activations on ``x`` (with ``outputs``, what the units pass on after any selection
    among them: :meth:`Model.unit_outputs`), or ``None`` for families without per-unit filters."""
    model.eval()
    x = torch.as_tensor(x)
    read = model.unit_outputs if outputs else model.unit_activations
    parts = []
    for i in range(0, len(x), batch_size):
        acts = read(x[i:i + batch_size].to(_device(model)))
        if acts is None:
            return None
        parts.append(acts.float().cpu())
    return torch.cat(parts).numpy()


def sparsity_stats(acts: np.ndarray, threshold: float) -> dict:
    """Per-unit mean activation and firing rate (share of samples with activation > ``threshold``), the share of
    dead units (never firing) and the mean number of active units per sample."""
    active = acts > threshold
    fire_rate = active.mean(axis=0)
    return {"mean_activation": acts.mean(axis=0), "fire_rate": fire_rate,
            "dead_share": float((fire_rate == 0).mean()), "active_per_sample": float(active.sum(axis=1).mean())}


def unit_norms(weights: np.ndarray) -> np.ndarray:
    """Each unit's weight norm (the L2 norm of its filter)."""
    return np.linalg.norm(weights.reshape(len(weights), -1), axis=1)


def unit_order(weights: np.ndarray, fire_rate: np.ndarray | None, by: str) -> np.ndarray:
    """Unit indices sorted for the mosaic: ``"norm"`` (largest weight norm first), ``"firing"`` (most often active
    first) or ``"index"``."""
    if by == "norm":
        return np.argsort(-unit_norms(weights), kind="stable")
    if by == "firing" and fire_rate is not None:
        return np.argsort(-fire_rate, kind="stable")
    return np.arange(len(weights))


def top_activating(acts: np.ndarray, unit: int, n: int = 9) -> np.ndarray:
    """Indices of the ``n`` samples that excite ``unit`` most, strongest first."""
    return np.argsort(-acts[:, unit], kind="stable")[:n]


def activation_maximization(model, unit: int, input_dim: int, norm: float, steps: int = 150, lr: float = 0.05,
                            seed: int = 0) -> np.ndarray:
    """The input of L2 norm ``norm`` that excites ``unit`` most, found by projected gradient ascent from noise
    (Erhan et al. 2009). Returns (D,) raw values (not clipped to pixels)."""
    gen = torch.Generator().manual_seed(seed)
    device = _device(model)
    x = torch.rand(1, input_dim, generator=gen).to(device)
    x = (x * norm / x.norm()).requires_grad_()
    model.eval()
    for _ in range(steps):
        act = model.unit_activations(x)[0, unit]
        (grad,) = torch.autograd.grad(act, x)
        with torch.no_grad():
            x += lr * norm * grad / grad.norm().clamp_min(1e-12)
            x *= norm / x.norm().clamp_min(1e-12)  # back onto the sphere of radius ``norm``
    return x.detach()[0].cpu().numpy()


def replicated_jacobians(encode, x: torch.Tensor, rows: int = 1024, create_graph: bool = False) -> torch.Tensor:
    """Per-sample Jacobians of ``encode`` at each row of ``x`` (B, D) -> (B, K, D) by plain autograd: K copies of
    each row go through ``encode`` at once and copy k carries the basis vector e_k back, so its input gradient is
    row k of that sample's Jacobian; at most ``rows`` copies a pass (4096 held 3 GB for a wide conv encoder).
    One forward pass of K copies costs what torch.func's jacrev costs in backward passes, and this one imports no
    torch._dynamo (1.3 s) and needs no batching rules (recurrent layers' fused kernels have none: they went one
    sample and one output at a time)."""
    b, d = x.shape
    with torch.no_grad():
        k = encode(x[:1]).shape[1]
    units, step = min(k, rows), max(1, rows // k)  # units of one sample a pass; samples a pass
    out = []
    for i in range(0, b, step):
        chunk, blocks = x[i:i + step], []
        for j in range(0, k, units):
            m = min(units, k - j)
            copies = chunk.repeat_interleave(m, 0).detach().requires_grad_(True)
            with torch.enable_grad():
                codes = encode(copies).view(len(chunk), m, k)[:, :, j:j + m]  # copy r of a sample carries unit j + r
                (grad,) = torch.autograd.grad(codes.diagonal(dim1=1, dim2=2).sum(), copies,
                                              create_graph=create_graph)
            blocks.append(grad.view(len(chunk), m, d))
        out.append(torch.cat(blocks, 1))
    return torch.cat(out)


def _jacobians(model, x: torch.Tensor) -> torch.Tensor:
    """Detached (B, K, D) encoder Jacobians: the family's closed form where it has one (fully connected encoders,
    k-sparse, PCA, sparse coding), else :func:`replicated_jacobians`."""
    with torch.no_grad():
        jac = model.encoder_jacobian(x) if hasattr(model, "encoder_jacobian") else None
    return replicated_jacobians(model.encode, x).detach() if jac is None else jac


def jacobian_norms(model, x: np.ndarray | torch.Tensor, batch_size: int = 16) -> np.ndarray:
    """Frobenius norm of the encoder's Jacobian at each row of ``x``: (N,)."""
    model.eval()
    x = torch.as_tensor(x).to(_device(model))
    out = [torch.linalg.vector_norm(_jacobians(model, x[i:i + batch_size]), dim=(1, 2)).cpu()
           for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy()


def jacobian_spectrum(model, x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Singular values of the encoder's Jacobian at one point ``x`` (D,), largest first."""
    model.eval()
    point = torch.as_tensor(x).to(_device(model))[None]
    jac = _jacobians(model, point)[0]
    return torch.linalg.svdvals(jac.double()).cpu().numpy()


def nonzero_spectrum(values: np.ndarray, rtol: float = 1e-6) -> tuple[np.ndarray, int]:
    """The singular values above ``rtol`` of the largest, and how many are below: those are zero but for float32's
    rounding (a code unit that is off at the point, or a layer narrower than the code), and on a log axis one of them
    (3.6e-17 for a GELU code unit) squashed every other value into the top of the plot."""
    values = np.asarray(values)
    kept = values[values > rtol * values.max()] if len(values) and values.max() > 0 else values[:0]
    return kept, len(values) - len(kept)


@torch.no_grad()
def contraction_curve(model, x: np.ndarray | torch.Tensor, radii: np.ndarray, n_dirs: int = 4,
                      seed: int = 0) -> np.ndarray:
    """Rifai et al.'s contraction ratio ||f(x + r u) - f(x)|| / r for random unit directions u, averaged over the
    points ``x`` and directions, for each input distance r in ``radii``: (len(radii),)."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(x).to(_device(model))
    base = model.encode(x)
    out = []
    for r in radii:
        ratios = []
        for _ in range(n_dirs):
            u = torch.randn(x.shape, generator=gen).to(x.device)
            u /= u.norm(dim=1, keepdim=True)
            ratios.append((model.encode(x + r * u) - base).norm(dim=1) / r)
        out.append(torch.cat(ratios).mean().item())
    return np.array(out)


@torch.no_grad()
def denoising_scores(models: dict, x: np.ndarray | torch.Tensor, kind: str, level: float, seed: int = 0) -> dict:
    """Corrupt clean ``x`` once, run every model on the same noisy inputs, and score them by PSNR against the clean
    images. Returns ``noisy`` (N, D), ``outputs`` {name: (N, D)}, ``psnr`` {name or "noisy input": (N,)}."""
    clean = torch.as_tensor(x)
    noisy = corrupt(clean, kind, level, torch.Generator().manual_seed(seed))
    outputs, scores = {}, {"noisy input": psnr(clean, noisy).numpy()}
    for name, model in models.items():
        model.eval()
        out = model.reconstruct(noisy.to(_device(model))).cpu()
        outputs[name] = out.numpy()
        scores[name] = psnr(clean, out).numpy()
    return {"noisy": noisy.numpy(), "outputs": outputs, "psnr": scores}
