"""Building blocks shared by the model families: activations, fully connected stacks, and a hand-derived
training step for plain fully connected autoencoders."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..losses import reconstruction_loss

_aten = torch.ops.aten

ACTIVATIONS = ("gelu", "relu", "elu", "tanh", "sigmoid", "linear")


def gelu(z: torch.Tensor) -> torch.Tensor:
    """Exact GELU, as ``F.gelu``, bitwise as ATen's own kernel computes it.

    On a CPU, ``F.gelu`` hands a contiguous float32 tensor to oneDNN, whose set-up costs 7-16 us a call (forward
    and backward), more than the arithmetic on a batch of 32. A transposed view is not contiguous, so it takes ATen's
    kernel instead (2-3x faster at these sizes); the result, transposed back, is contiguous. Autograd through it
    takes the ATen backward kernel too.
    """
    return F.gelu(z.t()).t() if z.dim() == 2 else F.gelu(z)


def gelu_backward(g: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """d loss / d z from d loss / d gelu(z) ``g``, by the kernel autograd uses for :func:`gelu`."""
    return _aten.gelu_backward(g.t(), z.t()).t() if z.dim() == 2 else _aten.gelu_backward(g, z)


class GELU(nn.Module):
    """``nn.GELU()`` computed by :func:`gelu`."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return gelu(z)


def activation(name: str) -> nn.Module:
    """The activation module called ``name`` (one of :data:`ACTIVATIONS`)."""
    table = {"gelu": GELU, "relu": nn.ReLU, "elu": nn.ELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
             "linear": nn.Identity}
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")
    return table[name]()


class MLP(nn.Module):
    """Linear layers ``sizes[0] -> ... -> sizes[-1]``, ``hidden_act`` between them and ``out_act`` after the last."""

    def __init__(self, sizes: list[int], hidden_act: str, out_act: str):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(sizes[:-1], sizes[1:]))
        for layer in self.layers:  # Glorot-uniform weights, zero biases (Keras' Dense default; the seed recipe's)
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.act_names = [hidden_act] * (len(self.layers) - 1) + [out_act]
        self.acts = nn.ModuleList(activation(n) for n in self.act_names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer, act in zip(self.layers, self.acts):
            x = act(layer(x))
        return x

    def jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """Per-sample Jacobians d out / d x, (B, D) -> (B, K, D), differentiable: the chain
        diag(a_L'(z_L)) W_L ... diag(a_1'(z_1)) W_1, multiplied from the narrower end. torch.func's vmap over
        jacrev computes the same with one backward pass per output unit, and imports torch._dynamo (1.3 s)."""
        slopes, h = [], x
        for layer, act, name in zip(self.layers, self.acts, self.act_names):
            z = layer(h)
            h = act(z)
            slopes.append(_ACT_BACKWARD[name](torch.ones_like(z), z, h))  # a'(z), by the kernels autograd uses
        if self.layers[-1].out_features <= self.layers[0].in_features:  # from the code's side: (B, K, H) products
            jac = slopes[-1][:, :, None] * self.layers[-1].weight
            for layer, slope in zip(reversed(self.layers[:-1]), reversed(slopes[:-1])):
                jac = (jac * slope[:, None, :]) @ layer.weight
            return jac
        jac = slopes[0][:, :, None] * self.layers[0].weight  # a code wider than the input: (B, H, D) products
        for layer, slope in zip(self.layers[1:], slopes[1:]):
            jac = slope[:, :, None] * (layer.weight @ jac)
        return jac


def mirrored_stages(enc_layers, enc_acts, dec_layers, dec_acts) -> list[tuple[nn.Module, nn.Module]]:
    """Greedy pretraining stages of a symmetric stack: (encoder layer i, its mirror decoder layer), outermost
    first. The modules are shared with the model, so training a stage trains the model."""
    n = len(enc_layers)
    return [(nn.Sequential(enc_layers[i], enc_acts[i]), nn.Sequential(dec_layers[n - 1 - i], dec_acts[n - 1 - i]))
            for i in range(n)]


# d(loss)/d(pre-activation) from d(loss)/d(activation) g, the pre-activation z and the activation h
_ACT_BACKWARD = {
    "gelu": lambda g, z, h: gelu_backward(g, z),
    "relu": lambda g, z, h: _aten.threshold_backward(g, h, 0),
    "elu": lambda g, z, h: _aten.elu_backward(g, 1.0, 1, 1.0, False, z),
    "tanh": lambda g, z, h: _aten.tanh_backward(g, h),
    "sigmoid": lambda g, z, h: _aten.sigmoid_backward(g, h),
    "linear": lambda g, z, h: g,
}
_ACT_FORWARD = {"gelu": gelu, "relu": F.relu, "elu": F.elu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
                "linear": lambda z: z}


class DenseStep:
    """One optimiser step of a plain fully connected autoencoder (``layers`` from input to reconstruction, loss =
    mean BCE on logits or MSE, no other terms) with the backward pass written out instead of recorded by autograd.

    The gradients are bitwise those autograd computes (a test checks). A batch-32 step of the seed recipe is a few
    dozen small ops on a CPU, so per-op overhead dominates it: skipping the tape, and building the lists of
    parameters and activation functions once instead of every step, is what makes it fast (``bench/step_time.py``).
    """

    def __init__(self, layers: list[nn.Linear], act_names: list[str], output_kind: str):
        self.weights = [layer.weight for layer in layers]
        self.biases = [layer.bias for layer in layers]
        self.forward = [_ACT_FORWARD[name] for name in act_names]
        self.backward = [_ACT_BACKWARD[name] for name in act_names]
        self.output_kind = output_kind
        self.order = range(len(layers) - 1, -1, -1)

    def __call__(self, x: torch.Tensor, optimizer) -> torch.Tensor:
        """Update the layers on batch ``x`` (B, D) with ``optimizer``; returns the loss before the update."""
        with torch.no_grad():
            zs, hs = [], [x]  # pre-activations and activations per layer, (B, out_i)
            h = x
            for w, b, act in zip(self.weights, self.biases, self.forward):
                z = F.linear(h, w, b)
                h = act(z)
                zs.append(z)
                hs.append(h)
            loss = reconstruction_loss(h, x, self.output_kind)
            if self.output_kind == "logits":  # d mean BCE-with-logits / d logits
                g = torch.sigmoid(h).sub_(x).div_(x.numel())
            else:  # d mean squared error / d output
                g = (h - x).mul_(2.0 / x.numel())
            for i in self.order:
                w, b = self.weights[i], self.biases[i]
                g = self.backward[i](g, zs[i], hs[i + 1])
                if w.grad is None:
                    w.grad, b.grad = torch.empty_like(w), torch.empty_like(b)
                torch.mm(g.t(), hs[i], out=w.grad)  # (out, B) @ (B, in)
                torch.sum(g, 0, out=b.grad)
                if i:
                    g = g.mm(w)  # (B, out) -> (B, in)
            optimizer.step()
        return loss
