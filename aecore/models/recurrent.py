"""Recurrent autoencoder (seed 002): an LSTM reads the image one row per time step and a second LSTM compresses the
sequence into a code; the decoder feeds the code, repeated once per row, to an LSTM whose outputs a dense layer turns
into each row's pixels (Keras' ``RepeatVector`` + ``TimeDistributed(Dense)``)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..config import ConfigError, param
from ..registry import register_model
from .base import AEConfig, Autoencoder


@dataclass(frozen=True)
class RecurrentConfig(AEConfig):
    hidden_size: int = param(100, min=1, max=1024, step=1, help="units of the row-reading and row-writing LSTMs")
    code_size: int = param(30, min=1, max=1024, step=1, help="units of the code LSTM (its last state is the code)")

    def validate(self) -> None:
        if len(self.input_shape) != 2:
            raise ConfigError("the recurrent autoencoder reads 2-D images row by row")


@register_model("recurrent", RecurrentConfig, "Recurrent autoencoder: LSTMs over image rows (seed 002)")
class RecurrentAutoencoder(Autoencoder):
    def __init__(self, config: RecurrentConfig):
        super().__init__(config)
        rows, width = config.input_shape
        self.enc_rows = nn.LSTM(width, config.hidden_size, batch_first=True)
        self.enc_code = nn.LSTM(config.hidden_size, config.code_size, batch_first=True)
        self.dec_rows = nn.LSTM(config.code_size, config.hidden_size, batch_first=True)
        self.to_row = nn.Linear(config.hidden_size, width)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.view(len(x), *self.config.input_shape)  # (B, H*W) -> (B, H, W): H steps of W pixels
        seq, _ = self.enc_rows(rows)
        _, (h, _) = self.enc_code(seq)
        return h[-1]  # (B, K), the code LSTM's last hidden state

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        steps = code[:, None, :].expand(-1, self.config.input_shape[0], -1).contiguous()  # (B, H, K)
        seq, _ = self.dec_rows(steps)
        return self.to_row(seq).flatten(1)  # (B, H, W) logits -> (B, H*W)
