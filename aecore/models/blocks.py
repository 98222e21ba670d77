"""Building blocks shared by the model families: activations and fully connected stacks."""
from __future__ import annotations

import torch
import torch.nn as nn

ACTIVATIONS = ("gelu", "relu", "elu", "tanh", "sigmoid", "linear")


def activation(name: str) -> nn.Module:
    """The activation module called ``name`` (one of :data:`ACTIVATIONS`)."""
    table = {"gelu": nn.GELU, "relu": nn.ReLU, "elu": nn.ELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
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
        names = [hidden_act] * (len(self.layers) - 1) + [out_act]
        self.acts = nn.ModuleList(activation(n) for n in names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer, act in zip(self.layers, self.acts):
            x = act(layer(x))
        return x


def mirrored_stages(enc_layers, enc_acts, dec_layers, dec_acts) -> list[tuple[nn.Module, nn.Module]]:
    """Greedy pretraining stages of a symmetric stack: (encoder layer i, its mirror decoder layer), outermost
    first. The modules are shared with the model, so training a stage trains the model."""
    n = len(enc_layers)
    return [(nn.Sequential(enc_layers[i], enc_acts[i]), nn.Sequential(dec_layers[n - 1 - i], dec_acts[n - 1 - i]))
            for i in range(n)]
