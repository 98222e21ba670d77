"""Sentence VAE (Bowman et al., *Generating Sentences from a Continuous Space*, CoNLL 2016) and the recurrent
language model it is measured against.

``sentence-vae``: word embeddings -> GRU or LSTM encoder -> mu, log sigma^2 of q(z|x); z initialises the decoder
RNN and is fed beside the embedding at every step. KL annealing (logistic as Bowman's, linear or cyclical), word
dropout on the decoder's input (Bowman's lever that makes the decoder use z) and free bits are controls.
``sentence-lm``: the same decoder with no z, the baseline that shows what the VAE's KL costs in NLL.

Losses are in nats per sentence, the end token included. A batch is a :class:`aecore.data.TokenBatch`; it is cut
to its longest sequence and every loss is masked by length, so padding changes nothing. Decoding: greedy, beam
search and sampling with a temperature.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import param
from ..data import TokenBatch
from ..losses import anneal_weight, gaussian_kl
from ..registry import register_model
from .base import Capabilities, Model, StepContext
from .vae import active_units

PAD, UNK, BOS, EOS = 0, 1, 2, 3  # ids of aecore.data.SPECIAL_TOKENS
DECODINGS = ("greedy", "beam", "sample")
CLIP_NORM = 5.0  # gradient-norm clipping, usual for RNNs: without it a few steps of lr 3e-3 blow the LSTM up


@dataclass(frozen=True)
class SentenceLMConfig:
    vocab_size: int = param(100, ui=False, help="words in the vocabulary, taken from the dataset")
    max_len: int = param(32, ui=False, help="longest sentence in tokens, end token included; from the dataset")
    cell: str = param("gru", choices=("gru", "lstm"), help="the recurrent cell of the encoder and the decoder")
    embedding_size: int = param(128, min=8, max=1024, step=8, help="dimensions of a word embedding")
    hidden_size: int = param(256, min=16, max=2048, step=16, help="state size of the recurrent cells")
    word_dropout: float = param(0.0, min=0.0, max=1.0, step=0.05,
                                help="share of the decoder's input words replaced by <unk> in training "
                                     "(Bowman et al. 2016): the decoder must then take what it needs from z")


@dataclass(frozen=True)
class SentenceVAEConfig(SentenceLMConfig):
    latent_size: int = param(16, min=1, max=256, step=1, help="dimensions of z")
    word_dropout: float = param(0.25, min=0.0, max=1.0, step=0.05,
                                help="share of the decoder's input words replaced by <unk> in training "
                                     "(Bowman et al. 2016): the decoder must then take what it needs from z")
    kl_anneal: str = param("logistic", choices=("logistic", "linear", "cyclical", "none"),
                           help="how the KL weight rises from 0 to 1: Bowman's logistic curve, a linear ramp, "
                                "ramps repeated every anneal_steps (Fu et al. 2019), or 1 from the start")
    anneal_steps: int = param(2000, min=0, max=100_000, step=100,
                              when={"kl_anneal": ("logistic", "linear", "cyclical")},
                              help="steps until the KL weight reaches 1 (logistic: 0.5 half-way)")
    free_bits: float = param(0.0, min=0.0, max=2.0, step=0.05,
                             help="nats per dimension (batch mean) below which a dimension's KL is not penalised "
                                  "(Kingma et al. 2016)")


def _select(state, index: torch.Tensor):
    """Rows ``index`` of an RNN state (GRU: h; LSTM: (h, c)), each (layers, N, H)."""
    return tuple(s[:, index] for s in state) if isinstance(state, tuple) else state[:, index]


class _SentenceModel(Model):
    """What the language model and the VAE share: the decoder, teacher-forced likelihoods and decoding."""

    capabilities = Capabilities(samples=True, modality="text")
    latent_size = 0

    def __init__(self, config: SentenceLMConfig):
        super().__init__(config)
        c = config
        self.rnn_cls = nn.GRU if c.cell == "gru" else nn.LSTM
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_size, padding_idx=PAD)
        self.decoder_rnn = self.rnn_cls(c.embedding_size + self.latent_size, c.hidden_size, batch_first=True)
        self.out = nn.Linear(c.hidden_size, c.vocab_size)

    # --- the decoder ------------------------------------------------------------------------------------------
    def _initial_state(self, z: torch.Tensor | None, n: int):
        """The decoder's first state: zeros (``None``) without z."""
        return None

    def log_likelihood(self, batch: TokenBatch, z: torch.Tensor | None = None) -> torch.Tensor:
        """log p(sentence | z) summed over its tokens (end token included), teacher-forced: (B,) nats. Word
        dropout replaces input words by ``<unk>`` in training mode."""
        length = int(batch.lengths.max())
        tokens = batch.tokens[:, :length]  # (B, T): the batch cut to its longest sentence
        inputs = torch.cat([torch.full_like(tokens[:, :1], BOS), tokens[:, :-1]], 1)  # shifted right
        p = self.config.word_dropout
        if self.training and p > 0:
            drop = torch.rand(inputs.shape, generator=self.noise(inputs.device), device=inputs.device) < p
            drop[:, 0] = False  # the start token stays
            inputs = inputs.masked_fill(drop, UNK)
        emb = self.embedding(inputs)  # (B, T, E)
        if z is not None:
            emb = torch.cat([emb, z[:, None].expand(-1, length, -1)], 2)  # (B, T, E + K)
        hidden, _ = self.decoder_rnn(emb, self._initial_state(z, len(tokens)))  # (B, T, H)
        mask = torch.arange(length, device=tokens.device) < batch.lengths[:, None]  # (B, T)
        token_nll = F.cross_entropy(self.out(hidden[mask]), tokens[mask], reduction="none")  # real tokens only
        rows = torch.arange(len(tokens), device=tokens.device)[:, None].expand_as(mask)[mask]
        return -torch.zeros(len(tokens), device=tokens.device).index_add_(0, rows, token_nll)

    def _step(self, prev: torch.Tensor, state, z: torch.Tensor | None):
        """One decoding step: previous ids (N,) -> log-probabilities of the next word (N, V), the new state."""
        emb = self.embedding(prev)[:, None]  # (N, 1, E)
        if z is not None:
            emb = torch.cat([emb, z[:, None]], 2)
        hidden, state = self.decoder_rnn(emb, state)
        logp = F.log_softmax(self.out(hidden[:, 0]), -1)
        logp[:, PAD] = logp[:, BOS] = -math.inf  # never emitted
        return logp, state

    @torch.no_grad()
    def generate(self, z: torch.Tensor | None, n: int, method: str = "greedy", width: int = 5,
                 temperature: float = 1.0, gen: torch.Generator | None = None,
                 max_len: int | None = None) -> list[list[int]]:
        """Decode ``n`` sentences (from the rows of ``z`` (n, K) where the model has one) as id lists without the
        end token: ``greedy``, ``beam`` search of ``width`` (width 1 is greedy) or ``sample`` at ``temperature``
        (drawn with ``gen``)."""
        if method not in DECODINGS:
            raise ValueError(f"unknown decoding {method!r}; valid: {', '.join(DECODINGS)}")
        max_len = max_len or self.config.max_len
        if method == "beam":
            return [self._beam(None if z is None else z[i:i + 1], width, max_len) for i in range(n)]
        device = self.out.weight.device
        state, prev = self._initial_state(z, n), torch.full((n,), BOS, device=device)
        done = torch.zeros(n, dtype=torch.bool, device=device)
        out = []
        for _ in range(max_len):
            logp, state = self._step(prev, state, z)
            if method == "sample":
                probs = F.softmax(logp / max(temperature, 1e-3), -1)
                prev = torch.multinomial(probs.cpu(), 1, generator=gen)[:, 0].to(device)
            else:
                prev = logp.argmax(-1)
            prev = prev.masked_fill(done, PAD)
            out.append(prev)
            done |= prev == EOS
            if bool(done.all()):
                break
        ids = torch.stack(out, 1).tolist()
        return [row[:row.index(EOS)] if EOS in row else row for row in ids]

    def _beam(self, z: torch.Tensor | None, width: int, max_len: int) -> list[int]:
        """Beam search for one sentence: the sequence of highest total log-probability ending in the end token
        (the best unfinished one if none ends within ``max_len``). A finished hypothesis is final once it scores
        at least the best live one, since adding a word only lowers a score."""
        device = self.out.weight.device
        live, scores = [[]], torch.zeros(1, device=device)
        state, finished = self._initial_state(z, 1), []
        for _ in range(max_len):
            prev = torch.tensor([seq[-1] if seq else BOS for seq in live], device=device)
            logp, state = self._step(prev, state, None if z is None else z.expand(len(live), -1))
            total = (scores[:, None] + logp).flatten()  # (live * V,)
            top = total.topk(min(width, int(torch.isfinite(total).sum())))
            keep, new_live, new_scores = [], [], []
            for score, flat in zip(top.values.tolist(), top.indices.tolist()):
                row, word = divmod(flat, logp.shape[1])
                if word == EOS:
                    finished.append((score, live[row]))
                else:
                    keep.append(row)
                    new_live.append(live[row] + [word])
                    new_scores.append(score)
            if not new_live or (finished and max(f[0] for f in finished) >= max(new_scores)):
                break
            live, scores = new_live, torch.tensor(new_scores, device=device)
            state = _select(state, torch.tensor(keep, device=device))
        if finished:
            return max(finished, key=lambda f: f[0])[1]
        return live[int(scores.argmax())]

    # --- what the views read ----------------------------------------------------------------------------------
    def prior_latents(self, n: int, gen: torch.Generator) -> torch.Tensor | None:
        return None

    @torch.no_grad()
    def sample(self, n: int, gen: torch.Generator, method: str = "sample", temperature: float = 1.0,
               width: int = 5) -> list[list[int]]:
        """``n`` new sentences as id lists (from the prior where there is a z)."""
        return self.generate(self.prior_latents(n, gen), n, method, width, temperature, gen)

    def _padded(self, rows: list[list[int]]) -> np.ndarray:
        out = np.zeros((len(rows), self.config.max_len), dtype=np.int64)
        for i, row in enumerate(rows):
            row = (row + [EOS])[:self.config.max_len]
            out[i, :len(row)] = row
        return out

    def preview(self, batch: TokenBatch) -> np.ndarray:
        """Samples drawn with a fixed seed, (B, max_len) ids."""
        return self._padded(self.sample(len(batch), torch.Generator().manual_seed(0)))

    def _test_chunks(self, data: Any, device: torch.device, size: int = 256):
        for batch, _ in data.batches("test", device).chunks(size):
            yield batch


@register_model("sentence-lm", SentenceLMConfig,
                "Recurrent language model (GRU/LSTM): the sentence VAE's decoder with no z, its baseline",
                train_defaults={"batch_size": 32, "epochs": 10, "lr": 1e-3})
class SentenceLM(_SentenceModel):
    metric_labels = {"nll": "test NLL (nats / sentence)", "ppl": "test perplexity (per word, end token included)"}

    def loss_units(self) -> dict[str, str]:
        return {"nll": "nats per sentence"}

    def forward(self, batch: TokenBatch):
        return self.output({"nll": -self.log_likelihood(batch).mean()})

    def training_step(self, batch: TokenBatch, optimizers: list, ctx: StepContext) -> dict[str, torch.Tensor]:
        (opt,) = optimizers
        loss = -self.log_likelihood(batch).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.parameters(), CLIP_NORM)
        opt.step()
        return {"nll": loss.detach()}

    @torch.no_grad()
    def evaluate(self, data: Any, device: torch.device | None = None, **_: Any) -> dict[str, float]:
        """``nll``: nats per test sentence; ``ppl``: exp of the nats per token, end tokens included."""
        was_training = self.training
        self.eval()
        device = device or self.out.weight.device
        nll, tokens, n = 0.0, 0, 0
        for batch in self._test_chunks(data, device):
            nll -= float(self.log_likelihood(batch).sum())
            tokens += int(batch.lengths.sum())
            n += len(batch)
        self.train(was_training)
        return {"nll": nll / n, "ppl": math.exp(nll / tokens)}


@register_model("sentence-vae", SentenceVAEConfig,
                "Sentence VAE (Bowman et al. 2016): GRU/LSTM encoder and decoder, KL annealing, word dropout",
                presets={"defaults (GRU, Bowman's logistic annealing and word dropout)": {},
                         "Bowman et al. 2016 (LSTM, logistic annealing, word dropout)": {"cell": "lstm"},
                         "codes that reconstruct (64-d, free bits 0.5, word dropout 0.3)": {
                             "latent_size": 64, "free_bits": 0.5, "word_dropout": 0.3},
                         "no word dropout (watch the KL collapse)": {"word_dropout": 0.0},
                         "cyclical annealing with free bits": {"kl_anneal": "cyclical", "free_bits": 0.1}},
                train_defaults={"batch_size": 32, "epochs": 10, "lr": 1e-3})
class SentenceVAE(_SentenceModel):
    capabilities = Capabilities(reconstructs=True, encodes=True, samples=True, posterior=True, modality="text")
    stat_labels = {"kl_weight": "KL weight in force"}
    metric_labels = {"nll": "test NLL bound, −ELBO (nats / sentence)",
                     "ppl": "test perplexity bound (per word, end token included)", "kl": "test KL (nats / sentence)",
                     "active_units": "active units", "nll_iw": "importance-weighted NLL (nats / sentence)"}

    def __init__(self, config: SentenceVAEConfig):
        self.latent_size = config.latent_size
        super().__init__(config)
        c = config
        self.encoder_rnn = self.rnn_cls(c.embedding_size, c.hidden_size, batch_first=True)
        self.to_posterior = nn.Linear(c.hidden_size, 2 * c.latent_size)
        self.to_state = nn.Linear(c.latent_size, c.hidden_size * (2 if c.cell == "lstm" else 1))

    def loss_units(self) -> dict[str, str]:
        return {"reconstruction": "nats per sentence", "kl": "nats per sentence"}

    def _initial_state(self, z: torch.Tensor | None, n: int):
        h = torch.tanh(self.to_state(z))[None]  # (1, n, H) or (1, n, 2H)
        return tuple(h.chunk(2, 2)) if self.config.cell == "lstm" else h

    def posterior_params(self, batch: TokenBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z|sentence), each (B, K): from the encoder's state after the end token."""
        tokens = batch.tokens[:, :int(batch.lengths.max())]
        hidden, _ = self.encoder_rnn(self.embedding(tokens))  # (B, T, H)
        last = hidden[torch.arange(len(tokens), device=tokens.device), batch.lengths - 1]  # padding never read
        mu, logvar = self.to_posterior(last).chunk(2, 1)
        return mu, logvar.clamp(-30.0, 20.0)

    def encode(self, batch: TokenBatch) -> torch.Tensor:
        """The posterior mean: the code the views, homotopies and reconstructions use."""
        return self.posterior_params(batch)[0]

    def _terms(self, batch: TokenBatch):
        mu, logvar = self.posterior_params(batch)
        eps = torch.randn(mu.shape, generator=self.noise(mu.device), device=mu.device)
        z = mu + (0.5 * logvar).exp() * eps  # reparameterisation
        return mu, -self.log_likelihood(batch, z), gaussian_kl(mu, logvar)  # (B, K), (B,), (B, K)

    def forward(self, batch: TokenBatch):
        mu, rec, kl = self._terms(batch)
        return self.output({"reconstruction": rec.mean(), "kl": kl.sum(1).mean()}, code=mu)

    def kl_weight(self, step: int) -> float:
        c = self.config
        return 1.0 if c.kl_anneal == "none" else anneal_weight(step, c.anneal_steps, c.kl_anneal)

    def training_step(self, batch: TokenBatch, optimizers: list, ctx: StepContext) -> dict[str, torch.Tensor]:
        (opt,) = optimizers
        _, rec, kl = self._terms(batch)
        rec, kl_mean = rec.mean(), kl.mean(0)  # each dimension's KL, batch mean: (K,)
        fb = self.config.free_bits
        weight = self.kl_weight(ctx.step)
        loss = rec + weight * (kl_mean.clamp_min(fb).sum() if fb > 0 else kl_mean.sum())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.parameters(), CLIP_NORM)
        opt.step()
        return {"reconstruction": rec.detach(), "kl": kl_mean.sum().detach(),
                "kl_weight": torch.tensor(weight, device=rec.device)}

    def prior_latents(self, n: int, gen: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.latent_size, generator=gen).to(self.out.weight.device)  # N(0, I)

    def reconstruct(self, batch: TokenBatch, method: str = "greedy", width: int = 5) -> list[list[int]]:
        """Decodes of the posterior means, as id lists."""
        with torch.no_grad():
            return self.generate(self.encode(batch), len(batch), method, width)

    def preview(self, batch: TokenBatch) -> np.ndarray:
        """Greedy decodes of the probe sentences' posterior means, (B, max_len) ids."""
        return self._padded(self.reconstruct(batch))

    @torch.no_grad()
    def log_weights(self, batch: TokenBatch, k: int, gen: torch.Generator) -> torch.Tensor:
        """log p(x, z_k) - log q(z_k | x) for k draws z_k ~ q(z|x): (B, k) (Burda et al. 2016)."""
        mu, logvar = self.posterior_params(batch)
        std = (0.5 * logvar).exp()
        out = []
        for _ in range(k):
            eps = torch.randn(mu.shape, generator=gen).to(mu.device)
            z = mu + std * eps
            log_pz = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(1)
            log_qz = -0.5 * (eps.pow(2) + logvar + math.log(2 * math.pi)).sum(1)
            out.append(self.log_likelihood(batch, z) + log_pz - log_qz)
        return torch.stack(out, 1)

    @torch.no_grad()
    def evaluate(self, data: Any, device: torch.device | None = None, iw_samples: int = 0,
                 progress=None) -> dict[str, Any]:
        """On the test sentences: ``nll`` (the bound -ELBO with one draw of z, nats per sentence), ``ppl`` (exp of
        that bound per token, end tokens included), ``kl``, ``kl_per_dim``, ``active_units``, and with
        ``iw_samples`` = K > 0 ``nll_iw``, the K-sample importance-weighted estimate of -log p(x)."""
        was_training = self.training
        self.eval()
        device = device or self.out.weight.device
        gen = torch.Generator().manual_seed(0)
        rec, kl, tokens, n, nll_iw, mus = 0.0, 0.0, 0, 0, 0.0, []
        batches = list(self._test_chunks(data, device))
        for i, batch in enumerate(batches):
            mu, r, kl_dims = self._terms(batch)
            rec += float(r.sum())
            kl = kl + kl_dims.sum(0).double().cpu()
            tokens += int(batch.lengths.sum())
            n += len(batch)
            mus.append(mu.cpu())
            if iw_samples:
                lw = self.log_weights(batch, iw_samples, gen)
                nll_iw -= float((torch.logsumexp(lw, 1) - math.log(iw_samples)).sum())
            if progress is not None:
                progress((i + 1) / len(batches))
        self.train(was_training)
        kl_per_dim = (kl / n).tolist()
        total_kl = float(kl.sum())
        out = {"nll": (rec + total_kl) / n, "ppl": math.exp((rec + total_kl) / tokens), "kl": total_kl / n,
               "active_units": active_units(torch.cat(mus).numpy()), "kl_per_dim": kl_per_dim}
        if iw_samples:
            out["nll_iw"], out["iw_samples"] = nll_iw / n, iw_samples
        return out

    def posterior_stats(self, batch: TokenBatch) -> dict[str, np.ndarray]:
        """Per dimension over ``batch``: the spread of the posterior means, the mean posterior std and mean KL."""
        with torch.no_grad():
            mu, logvar = self.posterior_params(batch)
            kl = gaussian_kl(mu, logvar).mean(0)
        return {"spread": mu.std(0).cpu().numpy(), "std": (0.5 * logvar).exp().mean(0).cpu().numpy(),
                "kl": kl.cpu().numpy()}
