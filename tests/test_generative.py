"""The VAE, the GAN, sampling and the sample scores: formulas against direct computations, the GAN's step order,
the importance-weighted bound against an exactly computed likelihood, the CLI's sample and eval."""
import json
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from aecore import RunStore, TrainSettings, TrainingJob, create_model, load_dataset
from aecore.__main__ import main
from aecore.losses import gaussian_kl
from aecore.models.base import StepContext
from aecore.scores import blur, draw_samples, frechet_distance, frechet_scale, train_classifier


def test_kl_term_is_the_closed_form():
    mu, logvar = torch.randn(6, 5), torch.randn(6, 5)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    exact = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0))
    torch.testing.assert_close(gaussian_kl(mu, logvar), exact)
    vae = create_model("vae", input_shape=(2, 2), hidden=(8,), latent_size=3)
    x = torch.rand(4, 4)
    m, lv = vae.posterior_params(x)
    expected = torch.distributions.kl_divergence(torch.distributions.Normal(m, (0.5 * lv).exp()),
                                                 torch.distributions.Normal(0.0, 1.0)).sum(1).mean()
    torch.testing.assert_close(vae(x).losses["kl"], expected)


def test_reconstruction_term_is_bce_summed_over_pixels():
    vae = create_model("vae", input_shape=(2, 2), hidden=(8,), latent_size=2).eval()
    x = torch.rand(3, 4)
    out = vae(x)
    p = torch.sigmoid(out.recon)
    direct = -(x * p.log() + (1 - x) * (1 - p).log()).sum(1).mean()
    torch.testing.assert_close(out.losses["reconstruction"], direct, rtol=1e-4, atol=1e-4)


def test_kl_warm_up_schedules():
    linear = create_model("vae", input_shape=(2, 2), beta=2.0, warmup_steps=100)
    assert [linear.kl_weight(s) for s in (0, 50, 100, 1000)] == [0.0, 1.0, 2.0, 2.0]
    cyc = create_model("vae", input_shape=(2, 2), beta=1.0, warmup_steps=100, warmup_schedule="cyclical")
    assert [cyc.kl_weight(s) for s in (0, 25, 50, 99, 100, 125)] == [0.0, 0.5, 1.0, 1.0, 0.0, 0.5]
    assert create_model("vae", input_shape=(2, 2), beta=0.5).kl_weight(0) == 0.5


def _step_grads(x: torch.Tensor, **config) -> list[torch.Tensor]:
    """The gradients one VAE training step applies (same init and noise every call)."""
    torch.manual_seed(0)
    vae = create_model("vae", input_shape=(2, 2), hidden=(8,), latent_size=2, **config)
    vae._noise = torch.Generator().manual_seed(0)
    seen = []
    opt = type("Opt", (), {"zero_grad": lambda self, set_to_none=True: None,
                           "step": lambda self: seen.append([p.grad.clone() for p in vae.parameters()])})()
    vae.training_step(x, [opt], StepContext(0, 0, 1, 1))
    return seen[0]


def test_free_bits_stop_the_kl_gradient_below_the_floor():
    """With free bits above every dimension's KL, the KL term adds a constant: the step's gradient is the
    reconstruction's alone (beta 0)."""
    x = torch.rand(8, 4)
    torch.manual_seed(0)
    vae = create_model("vae", input_shape=(2, 2), hidden=(8,), latent_size=2)
    assert float(gaussian_kl(*vae.posterior_params(x)).mean(0).max().detach()) < 2.0  # below the floor used here
    free, plain, no_kl = _step_grads(x, free_bits=2.0), _step_grads(x), _step_grads(x, beta=0.0)
    for a, b in zip(free, no_kl):
        torch.testing.assert_close(a, b)
    assert any(not torch.allclose(a, b) for a, b in zip(plain, no_kl))


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_tape_free_step_applies_autograds_gradients(precision):
    """The MLP VAE's step writes its gradients out by hand (aecore/models/vae.py): they must be autograd's of
    reconstruction + beta * sum_d max(KL_d, free_bits), with two hidden layers, free bits in force on some
    dimensions and not on others, and a log-variance past its clamp; under bfloat16 autocast, autograd's under the
    same autocast."""
    from aecore.training import autocast_for
    torch.manual_seed(0)
    vae = create_model("vae", input_shape=(4, 4), hidden=(12, 10), latent_size=3, beta=0.7, free_bits=0.3)
    with torch.no_grad():
        vae.encoder[1].bias[3] = 40.0  # the first dimension's log-variance is clamped at 20: no gradient through it
    x = torch.rand(16, 16)
    eps = torch.randn(16, 3)
    vae._eps = lambda like: eps
    amp = autocast_for(precision, torch.device("cpu"))
    with amp():
        _, _, _, rec, kl_dims = vae._terms(x)
        kl = kl_dims.mean(0)
        assert bool((kl < 0.3).any()) and bool((kl > 0.3).any())  # the floor matters for some dimensions only
        loss = rec + 0.7 * kl.clamp_min(0.3).sum()
    vae.zero_grad()
    loss.backward()
    expected = [p.grad.clone() for p in vae.parameters()]
    vae.zero_grad()
    steps = []
    opt = type("Opt", (), {"step": lambda self: steps.append([p.grad.clone() for p in vae.parameters()])})()
    with amp():
        out = vae.training_step(x, [opt], StepContext(0, 0, 1, 1))
    tol = {"float32": dict(rtol=1e-5, atol=1e-6), "bfloat16": dict(rtol=2e-2, atol=2e-3)}[precision]
    assert len(steps) == 1
    for (name, _), want, got in zip(vae.named_parameters(), expected, steps[0]):
        torch.testing.assert_close(got, want, **tol, msg=name)
    assert float(expected[4].abs().max()) > 0  # the encoder's output layer did get a gradient
    torch.testing.assert_close(out["reconstruction"], rec.detach().float(), **tol)
    torch.testing.assert_close(out["kl"], kl.sum().detach().float(), **tol)


def _exact_log_likelihood(vae, x: torch.Tensor) -> torch.Tensor:
    """log p(x) = log ∫ p(x|z) N(z; 0, 1) dz for a 1-D latent, by quadrature on a fine grid."""
    z = torch.linspace(-10, 10, 20001)[:, None]
    with torch.no_grad():
        logits = vae.decode(z)  # (G, D)
    log_px_z = -torch.nn.functional.binary_cross_entropy_with_logits(
        logits[:, None, :].expand(-1, len(x), -1), x.expand(len(z), -1, -1), reduction="none").sum(-1)
    log_pz = -0.5 * (z ** 2 + math.log(2 * math.pi))
    dz = float(z[1] - z[0])
    return torch.logsumexp(log_px_z + log_pz, 0) + math.log(dz)


def test_importance_weighted_bound_lies_between_elbo_and_exact_likelihood(digits):
    torch.manual_seed(0)
    vae = create_model("vae", input_shape=(2, 2), hidden=(16,), latent_size=1)
    x = torch.as_tensor(digits.x_train[:512].reshape(-1, 8, 8)[:, 3:5, 3:5].reshape(-1, 4))  # 2x2 crops
    from aecore import train
    train(vae, x, TrainSettings(epochs=3, batch_size=32, lr=3e-3, seed=0, output_bias_from_data=False))
    vae.eval()
    xs = x[:64]
    exact = _exact_log_likelihood(vae, xs)
    gen = torch.Generator().manual_seed(1)
    lw1 = vae.log_weights(xs, 200, gen)
    elbo = lw1.mean(1)
    iw = torch.logsumexp(vae.log_weights(xs, 200, gen), 1) - math.log(200)
    assert float(elbo.mean()) < float(iw.mean()) - 1e-3  # the bound tightens ...
    assert float(iw.mean()) <= float(exact.mean()) + 0.02  # ... towards log p(x), never past it on average
    assert float((exact - elbo).mean()) > float((exact - iw).mean()) >= -0.02


def test_vae_evaluate_reports_elbo_iw_kl_and_active_units(digits):
    vae = create_model("vae", input_shape=digits.image_shape, hidden=(32,), latent_size=4)
    m = vae.evaluate(digits, iw_samples=5)
    assert set(m) >= {"elbo_loss", "nll_iw", "kl_per_dim", "active_units", "bce"}
    assert len(m["kl_per_dim"]) == 4 and 0 <= m["active_units"] <= 4
    assert m["nll_iw"] <= m["elbo_loss"] + 1e-6 * abs(m["elbo_loss"])
    mu = vae.encode(torch.as_tensor(digits.x_test)).detach().numpy()
    assert m["active_units"] == int((mu.var(0) > 0.01).sum())


class _Recorder:
    def __init__(self, name, events, params):
        self.name, self.events, self.params = name, events, list(params)

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            p.grad = None

    def step(self):
        self.events.append(f"{self.name} step")
        with torch.no_grad():
            for p in self.params:
                p -= 0.1 * p.grad


@pytest.mark.parametrize("loss,d_norm", [("non-saturating", "spectral"), ("non-saturating", "batch"),
                                         ("wgan-gp", "none")])
def test_gan_step_updates_d_then_g_each_with_its_own_optimiser(loss, d_norm):
    gan = create_model("gan", input_shape=(8, 8), width=8, loss=loss, d_norm=d_norm)
    gan.train()
    gan._noise = torch.Generator().manual_seed(0)
    events = []
    gan.discriminator.register_forward_hook(lambda *a: events.append("D forward"))
    gan.generator.register_forward_hook(lambda *a: events.append("G forward"))
    opt_d = _Recorder("D", events, gan.discriminator.parameters())
    opt_g = _Recorder("G", events, gan.generator.parameters())
    g_before = [p.clone() for p in gan.generator.parameters()]
    d_before = [p.clone() for p in gan.discriminator.parameters()]

    g_after_d, d_grads = [], []
    original = opt_d.step
    opt_d.step = lambda: (original(), g_after_d.extend(p.clone() for p in gan.generator.parameters()),
                          d_grads.extend(p.grad.clone() for p in gan.discriminator.parameters()))
    out = gan.training_step(torch.rand(16, 64), [opt_d, opt_g], StepContext(0, 0, 10, 10))
    gp = ["D forward"] if loss == "wgan-gp" else []  # the penalty's D pass at interpolates
    d_passes = ["D forward"] * (2 if d_norm == "batch" else 1)  # batch norm: real and fake batches apart
    assert events == ["G forward", *d_passes, *gp, "D step", "D forward", "G step"]
    assert all(torch.equal(a, b) for a, b in zip(g_before, g_after_d))  # D's step leaves G alone
    assert any(not torch.equal(a, b) for a, b in zip(g_before, gan.generator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, gan.discriminator.parameters()))
    assert {"d_loss", "g_loss"} <= set(out) and all(torch.isfinite(v) for v in out.values())
    # G's pass through D computes no gradients for D (its next step would throw them away), and D trains on after
    assert all(torch.equal(a, p.grad) and p.requires_grad for a, p in zip(d_grads, gan.discriminator.parameters()))


@pytest.mark.parametrize("batch", [16, 18])
def test_one_pass_of_d_over_real_and_fake_gives_the_loss_of_two(batch):
    """Without batch norm in D, D judges real and fake images in one pass; the D loss is the one of two passes,
    -log D(x) - log(1 - D(G(z))). A batch that does not divide into packs (18 with pack 4) takes two passes, so no
    pack mixes real and fake images."""
    gan = create_model("gan", input_shape=(8, 8), width=8, d_norm="none", pack=4).train()
    real = torch.rand(batch, 64)
    fake = gan.generate(torch.randn(batch, gan.config.noise_size, generator=torch.Generator().manual_seed(0)))
    d_real, d_fake = gan.discriminator(real), gan.discriminator(fake)
    expected = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    gan._noise = torch.Generator().manual_seed(0)
    passes = []
    gan.discriminator.register_forward_hook(lambda m, args, out: passes.append(len(args[0])))
    opts = [torch.optim.SGD(gan.discriminator.parameters(), 0.0), torch.optim.SGD(gan.generator.parameters(), 0.0)]
    out = gan.training_step(real, opts, StepContext(0, 0, 10, 10))
    assert out["d_loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert out["d_fake_acc"].item() == pytest.approx((d_fake < 0).float().mean().item())
    assert passes[:-1] == ([2 * batch] if batch % 4 == 0 else [batch, batch])  # then G's pass through D


@pytest.mark.parametrize("architecture,d_norm", [("mlp", "none"), ("dcgan", "none"), ("dcgan", "batch")])
def test_feature_matching_adds_the_gap_of_d_s_mean_features_to_g_s_loss(architecture, d_norm):
    """Feature matching (Salimans et al. 2016) with weight λ: G's loss is the non-saturating one plus λ times the
    squared distance between the means of D's last hidden layer over the real packs (D before its step, the pass
    D trained on) and over the fake packs (D after it). G's gradients are checked against autograd on that loss
    written out, with D's step redone by hand."""
    import copy
    lam = 0.3
    gan = create_model("gan", input_shape=(8, 8), width=8, architecture=architecture, d_norm=d_norm, pack=2,
                       feature_matching=lam).train()
    ref = copy.deepcopy(gan)
    real = torch.rand(16, 64)
    gan._noise = torch.Generator().manual_seed(0)
    events = []
    got = _Recorder("G", events, gan.generator.parameters())
    got.step = lambda: events.extend(p.grad.clone() for p in gan.generator.parameters())
    out = gan.training_step(real, [torch.optim.SGD(gan.discriminator.parameters(), 0.1), got],
                            StepContext(0, 0, 10, 10))

    z = torch.randn(16, gan.config.noise_size, generator=torch.Generator().manual_seed(0))
    fake = ref.generate(z)
    d_real, h_real = ref.discriminator(real, features=True)
    d_loss = F.softplus(-d_real).mean() + F.softplus(ref.discriminator(fake.detach())).mean()
    opt = torch.optim.SGD(ref.discriminator.parameters(), 0.1)
    opt.zero_grad()
    d_loss.backward()
    opt.step()
    d_fake, h_fake = ref.discriminator(fake, features=True)
    assert h_fake.shape == (8, h_real.shape[1])  # a row a pack of 2
    gap = (h_fake.mean(0) - h_real.detach().mean(0)).pow(2).sum()
    params = list(ref.generator.parameters())
    want = torch.autograd.grad(F.softplus(-d_fake).mean() + lam * gap, params, retain_graph=True)
    without = torch.autograd.grad(F.softplus(-d_fake).mean(), params)
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(events, want))
    assert not all(torch.allclose(a, b, rtol=1e-2, atol=1e-4) for a, b in zip(events, without))  # the term counts
    assert out["g_loss"].item() == pytest.approx(F.softplus(-d_fake).mean().item(), rel=1e-4)  # the GAN loss alone
    assert create_model("gan", input_shape=(8, 8), width=8, loss="wgan-gp").fm_weight == 0.0  # not with a critic


@pytest.mark.parametrize("pack", [1, 4])
def test_a_batch_of_one_image_still_trains_the_gan(pack):
    """A batch size of 1, or a last batch of 1: G's batch norm needs two samples, so the step draws two fakes (before,
    training failed with "Expected more than 1 value per channel")."""
    gan = create_model("gan", input_shape=(8, 8), width=8, pack=pack).train()
    gan._noise = torch.Generator().manual_seed(0)
    opts = [torch.optim.SGD(gan.discriminator.parameters(), 0.1), torch.optim.SGD(gan.generator.parameters(), 0.1)]
    g_before = [p.clone() for p in gan.generator.parameters()]
    out = gan.training_step(torch.rand(1, 64), opts, StepContext(0, 0, 10, 10))
    assert all(torch.isfinite(v) for v in out.values())
    assert any(not torch.equal(a, b) for a, b in zip(g_before, gan.generator.parameters()))


@pytest.mark.parametrize("architecture", ["dcgan", "mlp"])
def test_pacgan_discriminator_judges_packs_of_samples(architecture):
    """PacGAN (Lin et al. 2018): D sees ``pack`` samples at once, so a batch of 16 gives 8 scores with pack 2;
    a pack's score depends on every sample in it and on no other; an odd remainder is left out."""
    gan = create_model("gan", input_shape=(8, 8), width=8, pack=2, architecture=architecture).eval()
    x = torch.rand(17, 64)
    scores = gan.discriminator(x)
    assert scores.shape == (8,)
    y = x.clone()
    y[3] = torch.rand(64)  # in the second pack (samples 2 and 3)
    changed = gan.discriminator(y) != scores
    assert changed.tolist() == [i == 1 for i in range(8)]
    # the gradient penalty's norm is over a pack: D's input gradient is the whole pack's
    from aecore.models.gan import gradient_penalty
    real, fake = torch.rand(16, 64), torch.rand(16, 64)
    gp = gradient_penalty(gan.discriminator, real, fake, torch.Generator().manual_seed(0))
    t = torch.rand(16, 1, generator=torch.Generator().manual_seed(0))
    x_hat = (t * real + (1 - t) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(gan.discriminator(x_hat).sum(), x_hat)
    assert torch.allclose(gp, (grad.reshape(8, 128).norm(dim=1) - 1).pow(2).mean())
    # a batch smaller than a pack (a last batch of 1) is repeated to fill one: D never judges nothing
    assert gan.discriminator(x[:1]).shape == (1,) and torch.isfinite(gan.discriminator(x[:1])).all()


@pytest.mark.parametrize("architecture", ["dcgan", "mlp"])
def test_spectral_norm_keeps_each_layer_of_d_at_norm_one(architecture):
    """Miyato et al. 2018: each of D's weights is divided by its largest singular value (estimated by power
    iteration, one step per training forward), so every layer is 1-Lipschitz: checked against an SVD of the weight
    D actually uses (a convolution's as an (out, in*k*k) matrix)."""
    gan = create_model("gan", input_shape=(8, 8), width=8, architecture=architecture, d_norm="spectral").train()
    layers = [m for m in gan.discriminator.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert len(layers) == 3 and all(nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in gan.discriminator.modules())
    with torch.no_grad():
        for m in layers:  # raw weights far from norm 1, so the check below means something
            m.parametrizations.weight.original.mul_(5.0)
    for _ in range(30):
        gan.discriminator(torch.rand(16, 64))
    for m in layers:
        assert torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item() == pytest.approx(1.0, abs=0.02)
    batch = create_model("gan", input_shape=(8, 8), width=8, d_norm="batch")
    assert any(isinstance(m, nn.BatchNorm2d) for m in batch.discriminator.modules())
    critic = create_model("gan", input_shape=(8, 8), width=8, d_norm="batch", loss="wgan-gp")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in critic.discriminator.modules())  # no batch norm in a critic


def test_gan_learns_the_data_on_digits(digits):
    """A few epochs move the samples' pixel means towards the data's, and D is better than chance."""
    from aecore import train
    gan = create_model("gan", input_shape=digits.image_shape, width=16, architecture="mlp")
    data_mean = torch.as_tensor(digits.x_train).mean(0)
    gen = torch.Generator().manual_seed(0)
    gan.eval()
    before = (gan.sample(500, gen).mean(0) - data_mean).abs().mean()
    p = train(gan, digits.x_train, TrainSettings(epochs=8, batch_size=64, lr=2e-4, seed=0))
    gan.eval()
    after = (gan.sample(500, torch.Generator().manual_seed(0)).mean(0) - data_mean).abs().mean()
    assert after < 0.5 * before, (before, after)
    assert p.stat_labels and "d_real_acc" in p.history[-1]
    assert sorted(gan.checkpoints) and len(p.snapshots[max(p.snapshots)]) == 64  # fixed-noise samples per epoch


def test_autoencoder_samples_from_a_gaussian_fitted_to_its_codes(digits):
    model = create_model("stacked", input_shape=digits.image_shape, code_size=4).eval()
    model.prepare_sampling(digits)
    codes = model.encode(torch.as_tensor(digits.x_train)).detach().double()
    z = model.prior_latents(20000, torch.Generator().manual_seed(0)).double()
    torch.testing.assert_close(z.mean(0), codes.mean(0), atol=0.05 * float(codes.std()), rtol=0)
    torch.testing.assert_close(torch.cov(z.T), torch.cov(codes.T), atol=0.08 * float(codes.var(0).max()), rtol=0)
    a, b = draw_samples(model, 10, 3, digits), draw_samples(model, 10, 3, digits)
    assert a.shape == (10, 64) and np.array_equal(a, b)


def test_frechet_distance_is_zero_to_itself_and_grows_with_noise():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(2000, 6)) @ rng.normal(size=(6, 6))
    assert abs(frechet_distance(f, f)) < 1e-6
    d = [frechet_distance(f + rng.normal(0, s, f.shape), f) for s in (0.1, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(d, d[1:]))
    # against the formula with scipy's matrix square root
    from scipy.linalg import sqrtm
    g = rng.normal(1.0, 2.0, size=(1500, 6))
    s1, s2 = np.cov(f, rowvar=False), np.cov(g, rowvar=False)
    direct = ((f.mean(0) - g.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * sqrtm(s1 @ s2).real)
    assert math.isclose(frechet_distance(f, g), direct, rel_tol=1e-6)


def test_frechet_scale_grows_with_the_noise(digits):
    clf, info = train_classifier(digits, steps=150)
    assert info["test_accuracy"] > 0.8
    rows = dict(frechet_scale(clf, digits, n=300))
    noise = [rows[f"test images + Gaussian noise σ={s:g}"] for s in (0.1, 0.25, 0.5)]
    assert 0 < noise[0] < noise[1] < noise[2] and rows["training images (the floor)"] > 0


def test_the_classifier_cache_is_never_left_half_written(digits, monkeypatch, tmp_path):
    """The cached classifier was written in place: a write cut off (a full disk, a process killed) left a half
    file under the name a reader loads. It is written to a temporary file and renamed."""
    import aecore.scores as scores

    def cut_off(tensors, path):
        open(path, "wb").write(b"\0" * 64)  # half of it, then the disk is full
        raise OSError(28, "No space left on device")
    real = scores.save_file
    monkeypatch.setattr(scores, "save_file", cut_off)
    clf, info = scores.classifier_for(digits, tmp_path, steps=50)  # still served
    assert clf is not None and list((tmp_path / ".classifiers").iterdir()) == []
    monkeypatch.setattr(scores, "save_file", real)
    scores.classifier_for(digits, tmp_path, steps=50)
    assert sorted(p.name for p in (tmp_path / ".classifiers").iterdir()) == ["digits.json", "digits.safetensors"]


def test_blur_keeps_mass_and_spreads_it():
    x = np.zeros((1, 81), np.float32)
    x[0, 40] = 1.0  # the centre of a 9x9 image
    b = blur(x, (9, 9), 1.0)
    assert math.isclose(float(b.sum()), 1.0, rel_tol=1e-5) and b[0, 40] < 0.2 and b[0, 41] > 0


def _train(model, dataset="digits", epochs=2, **config):
    job = TrainingJob(model, config, load_dataset(dataset), TrainSettings(epochs=epochs, batch_size=64, lr=2e-3),
                      store=RunStore())
    job.start().join()
    assert job.record is not None and job.record.status == "finished", job.progress().message
    return job


def test_a_gan_run_is_listed_by_its_samples_scores_not_by_a_loss(monkeypatch):
    """The run lists showed a GAN as "test D loss 1.3397", which says who is winning, not how good the samples are.
    Its run now carries the classifier's Fréchet distance and confident share of 1,000 samples at seed 0, the
    Generate page's numbers under its grid, and lists by the distance."""
    from aecore.scores import SCORE_N, classifier_for, classify, sample_scores
    job = _train("gan", width=8)
    store = RunStore()
    model, record = store.load(job.run_id)
    clf, _ = classifier_for(load_dataset("digits"), store.root)
    digits = load_dataset("digits")
    direct = sample_scores(clf, draw_samples(model, SCORE_N, 0, digits), classify(clf, digits.x_test)[0])
    assert math.isclose(record.metrics["classifier_frechet"], direct["classifier_frechet"], rel_tol=1e-6)
    assert record.metrics["confident_share"] == direct["confident_share"]
    assert record.headline == ("classifier Fréchet", record.metrics["classifier_frechet"])
    assert "d_loss" in record.metrics and "classifier Fréchet" in store.list()[0].record.label
    assert record.headline_text == f"classifier Fréchet {record.metrics['classifier_frechet']:.2f}"  # not 404.6793
    import aecore.scores as scores

    def no_classifier(*args, **kwargs):
        raise ValueError("a dataset the classifier cannot learn")
    monkeypatch.setattr(scores, "classifier_for", no_classifier)
    job = _train("gan", width=8)  # saved and finished all the same, listed by its D loss
    assert "classifier_frechet" not in job.record.metrics and job.record.headline[0] == "test D loss"
    assert "could not be scored (ValueError: a dataset the classifier cannot learn)" in job.record.message


def test_stop_while_the_digit_classifier_trains_saves_the_run_without_waiting_for_it(monkeypatch):
    """Stop pressed while a GAN's samples were being scored waited for the digit classifier's training (18.7 s
    on the embedded 5,000 digits, with no progress shown) and then reported the run as scored. Now the phase shows
    the classifier's progress, and Stop ends its training at the next report: the run is saved at once, listed by
    its D loss, with a note that says why; no half-trained classifier is cached."""
    import aecore.scores as scores
    monkeypatch.setattr(scores, "_TRAINED", {})  # none kept from another test: this one must train it
    reports, phases, real = [], [], scores.train_classifier

    def pressed_stop_at_the_third_report(data, steps=scores.CLASSIFIER_STEPS, seed=0, progress=None):
        def report(fraction):
            reports.append(fraction)
            if len(reports) == 3:
                job.stop()
            progress(fraction)
        return real(data, steps=steps, seed=seed, progress=report)
    monkeypatch.setattr(scores, "train_classifier", pressed_stop_at_the_third_report)
    publish = TrainingJob._publish
    monkeypatch.setattr(TrainingJob, "_publish", lambda self, p: (phases.append(p.phase), publish(self, p))[1])
    job = TrainingJob("gan", {"width": 8}, load_dataset("digits"), TrainSettings(epochs=1, batch_size=64),
                      store=RunStore())
    job.start().join()
    assert len(reports) == 3  # no step of the classifier after Stop's report
    assert "training the digit classifier that scores the samples (once per dataset): 4%" in phases  # 50 of 1,200
    record = RunStore().load(job.run_id)[1]
    assert record.status == "finished" and "classifier_frechet" not in record.metrics
    assert record.headline[0] == "test D loss" and "Stop came while the digit classifier trained" in record.message
    assert not scores._cache_paths(RunStore().root, "digits")[0].exists()


def test_sample_cli_writes_grids_and_arrays(tmp_path, capsys):
    run = _train("gan", width=8).run_id
    assert main(["sample", run, "--n", "12", "--seed", "3", "--out", str(tmp_path / "s.npy")]) == 0
    a = np.load(tmp_path / "s.npy")
    assert a.shape == (12, 64) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    assert main(["sample", run, "--n", "12", "--seed", "3", "--out", str(tmp_path / "t.npy")]) == 0
    assert np.array_equal(a, np.load(tmp_path / "t.npy"))  # the seed decides
    assert main(["sample", run, "--n", "10", "--out", str(tmp_path / "s.png")]) == 0
    from PIL import Image
    img = Image.open(tmp_path / "s.png")
    assert img.size == (2 * (4 * 9 + 1), 2 * (3 * 9 + 1))  # 10 samples: 4 columns, 3 rows of 8x8 tiles + 1 px pads
    assert main(["sample", run, "--out", str(tmp_path / "s.jpg")]) == 2
    assert main(["sample", run, "--n", "0", "--out", str(tmp_path / "s.npy")]) == 2
    pca = _train("pca", code_size=8).run_id
    assert main(["sample", pca, "--n", "5", "--out", str(tmp_path / "p.npy")]) == 0  # an autoencoder samples too
    assert np.load(tmp_path / "p.npy").shape == (5, 64)


def test_eval_cli_prints_vae_bounds_and_sample_scores(capsys, monkeypatch):
    import aecore.scores as scores
    monkeypatch.setattr(scores, "CLASSIFIER_STEPS", 300)
    monkeypatch.setattr(scores.classifier_for, "__defaults__", (None, 300))
    run = _train("vae", hidden=(32,), latent_size=4).run_id
    capsys.readouterr()
    assert main(["eval", run, "--iw-samples", "20", "--samples", "300"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("test_elbo_loss", "test_nll_iw", "test_kl_per_dim", "test_active_units", "confident_share",
                "label_histogram", "classifier_frechet", "classifier_test_accuracy"):
        assert key in out, key
    assert out["test_nll_iw"] <= out["test_elbo_loss"] and len(out["test_kl_per_dim"]) == 4
    assert math.isclose(sum(out["label_histogram"]), 1.0, abs_tol=1e-3) and len(out["label_histogram"]) == 10
    assert out["classifier_test_accuracy"] > 0.8
    assert (RunStore().root / ".classifiers" / "digits.safetensors").is_file()  # cached beside the runs
    assert main(["eval", run, "--iw-samples", "0"]) == 2


def test_gan_rollback_saves_a_new_run_with_an_earlier_generator():
    job = _train("gan", epochs=3, width=8)
    store = RunStore()
    epochs = store.checkpoint_epochs(job.run_id)
    assert epochs == [1, 2, 3]
    new = store.rollback(job.run_id, 1)
    model, record = store.load(new)
    kept = store.artifact(job.run_id, "checkpoints")
    for k, v in model.generator.state_dict().items():
        assert np.array_equal(v.numpy(), kept[f"epoch_1.generator.{k}"])
    final, _ = store.load(job.run_id)
    for k, v in model.discriminator.state_dict().items():
        assert torch.equal(v, final.discriminator.state_dict()[k])
    assert record.message.startswith(f"rolled back from {job.run_id}") and max(r["epoch"] for r in record.epochs) == 1
    from aecore import RunStoreError
    with pytest.raises(RunStoreError, match="kept no weights for epoch 7"):
        store.rollback(job.run_id, 7)


def test_gan_diagnosis_names_collapse_and_divergence(digits):
    from aecore.models.gan import diagnose
    same = np.repeat(digits.x_test[:1], 64, axis=0)
    assert any("nearly identical" in p for p in diagnose([], same, digits.x_test[:256]))
    assert any("classified as class 3" in p for p in diagnose([], digits.x_test[:64], digits.x_test[:256],
                                                               np.full(64, 3)))
    assert any("D's loss is at 0" in p for p in diagnose([{"d_loss": 1e-5}] * 5, digits.x_test[:64],
                                                          digits.x_test[:256]))
    assert diagnose([{"d_loss": 0.7}] * 5, digits.x_test[:64], digits.x_test[:256], digits.y_test[:64]) == []
    # one class of ten over half is a collapse; of two classes, 57 % is not (it was called one), 75 % is
    x = digits.x_test[:100]
    assert any("51% of the samples" in p for p in diagnose([], x, x, np.r_[np.zeros(51, int), np.arange(49) % 9 + 1]))
    assert not any("classified" in p for p in diagnose([], x, x, np.r_[np.zeros(49, int), np.arange(51) % 9 + 1]))
    two = lambda zeros: np.r_[np.zeros(zeros, int), np.ones(100 - zeros, int)]  # noqa: E731
    assert not any("classified" in p for p in diagnose([], x, x, two(57), n_classes=2))
    assert any("75% of the samples are classified as class 0" in p for p in diagnose([], x, x, two(75), n_classes=2))


def test_vae_job_logs_both_terms_and_the_beta_in_force():
    job = _train("vae", hidden=(16,), latent_size=3, warmup_steps=100)
    r = job.record
    assert {"reconstruction", "kl", "beta"} <= set(r.history[-1]) and r.stat_labels == {"beta": "KL weight β in force"}
    betas = [h["beta"] for h in r.history]
    assert betas[0] < betas[-1] <= 1.0  # the warm-up ramps
    assert r.units == {"reconstruction": "nats per image", "kl": "nats per image"}
    assert "val_kl" in r.epochs[-1] and math.isclose(r.metrics["elbo_loss"],
                                                     r.metrics["elbo_loss"]) and r.headline[0].startswith("test −ELBO")


def test_the_classifier_is_called_a_digit_classifier_only_where_the_classes_are_digits():
    """The Generate page, the job's phases and the CLI spoke of a "digit classifier" scoring clothes."""
    from types import SimpleNamespace
    from aecore.data import classifier_noun
    assert classifier_noun(load_dataset("digits")) == "digit classifier"
    assert classifier_noun(SimpleNamespace(class_names=tuple("0123456789"))) == "digit classifier"  # folders 0-9
    assert classifier_noun(SimpleNamespace(class_names=("T-shirt/top", "Trouser", "Pullover"))) == "classifier"
    assert classifier_noun(SimpleNamespace(class_names=("1", "10", "11"))) == "classifier"


def test_samples_of_a_one_class_dataset_are_not_scored_by_a_classifier_that_learns_nothing(tmp_path):
    """Pictures uploaded without a folder per class are one class: the Generate page trained a "digit classifier"
    of one class on them (its cross-entropy is 0 from the start, so it learns nothing), called every sample
    confident and showed its test accuracy, 100 %. The job and the page now leave such samples unscored and say
    why, as ``eval`` did."""
    from aecore import images as user_images
    from aecore.scores import classifier_for
    from tests.test_recipes import _bars, _zip
    files = {f"{i}.png": v for i, v in enumerate(v for k, v in _bars().items() if k.endswith(".png"))}
    loose = user_images.dataset_from_upload(_zip(files), "loose.zip", "Loose", side=16)
    assert loose.class_names == ("unlabelled",)
    with pytest.raises(ValueError, match="one class"):
        classifier_for(loose, tmp_path)
    job = TrainingJob("gan", {"width": 8}, loose, TrainSettings(epochs=1, batch_size=8), store=RunStore(tmp_path))
    job.start().join()
    assert job.record.status == "finished" and "classifier_frechet" not in job.record.metrics
    assert "not scored: " + loose.name + " has one class" in job.record.message
    assert not (tmp_path / ".classifiers").exists()  # none trained, none cached


def test_the_vae_bench_counts_each_epoch_of_the_plain_loop_once(monkeypatch):
    """Run one after the other (no --interleave), the plain loop's epochs were each timed from the run's start, so
    epoch E was counted E times: 10 epochs of about 3 s each were reported as 164 s, and aecore 10x as fast."""
    import types
    from bench import vae_recipe
    clock = [0.0]
    monkeypatch.setattr(vae_recipe, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    turns = vae_recipe.Turns(False)
    turns.wait()
    for seconds in (1.0, 2.0, 3.0):
        clock[0] += seconds
        turns.done(last=seconds == 3.0)
    assert turns.seconds == 6.0


def test_the_gan_trains_with_channels_last_weights_to_the_same_weights():
    """configure_optimizers puts the convolutions' weights in channels-last order (oneDNN runs them faster): three
    steps give the weights the same steps give in the default order."""
    from aecore.optim import adam
    from aecore.training import TrainSettings
    nets = []
    for channels_last in (True, False):
        torch.manual_seed(0)
        gan = create_model("gan", input_shape=(8, 8), width=8).train()
        if channels_last:
            opts = gan.configure_optimizers(TrainSettings(lr=2e-4, seed=0), torch.device("cpu"))
            assert gan.generator.up[0].weight.is_contiguous(memory_format=torch.channels_last)
            assert not gan.generator.up[0].weight.is_contiguous()
        else:
            gan.seed_noise(0, torch.device("cpu"))
            opts = [adam(gan.discriminator.parameters(), 2e-4, torch.device("cpu"), betas=(0.5, 0.999)),
                    adam(gan.generator.parameters(), 2e-4, torch.device("cpu"), betas=(0.5, 0.999))]
        x = torch.rand(16, 64, generator=torch.Generator().manual_seed(1))
        for step in range(3):
            gan.training_step(x, opts, StepContext(step, 0, 3, 3))
        nets.append(gan.state_dict())
    for k in nets[1]:
        torch.testing.assert_close(nets[0][k], nets[1][k], rtol=1e-4, atol=1e-5, msg=k)
