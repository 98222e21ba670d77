"""The regularized zoo: every penalty and update rule against a direct computation, masks, noise, shapes."""
import math
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aecore import ConfigError, StepContext, TrainSettings, create_model, train
from aecore.losses import kl_sparsity_penalty, l1_activity_penalty, weight_decay_penalty
from aecore.models.ksparse import keep_top_k
from aecore.models.neural_sparse_coding import arora_update
from aecore.noise import corrupt, psnr

CTX = StepContext(0, 0, 1, 1)

SHAPE = (8, 8)


def test_l1_penalty_is_weight_times_summed_abs_code_per_sample():
    model = create_model("sparse-l1", input_shape=SHAPE, hidden=(), code_size=12, l1_weight=0.01)
    x = torch.rand(6, 64)
    out = model(x)
    code = torch.sigmoid(x @ model.encoder.layers[0].weight.T + model.encoder.layers[0].bias)
    expected = 0.01 * sum(float(v) for v in code.detach().abs().flatten()) / 6
    assert out.losses["l1_sparsity"].item() == pytest.approx(expected, rel=1e-5)
    assert l1_activity_penalty(torch.tensor([[-1.0, 2.0], [0.5, 0.0]]), 2.0).item() == pytest.approx(3.5)


def test_kl_penalty_matches_the_formula():
    code = torch.tensor([[0.2, 0.9, 0.05], [0.4, 0.7, 0.15]])
    rho, beta = 0.1, 3.0
    expected = 0.0
    for j in range(3):
        q = (code[0, j].item() + code[1, j].item()) / 2
        expected += rho * math.log(rho / q) + (1 - rho) * math.log((1 - rho) / (1 - q))
    assert kl_sparsity_penalty(code, rho, beta).item() == pytest.approx(beta * expected, rel=1e-5)
    assert kl_sparsity_penalty(torch.full((4, 3), 0.1), 0.1, 1.0).item() == pytest.approx(0.0, abs=1e-6)
    model = create_model("sparse-kl", input_shape=SHAPE, hidden=(), code_size=5, rho=0.2, beta=0.5)
    x = torch.rand(7, 64)
    out = model(x)
    assert out.losses["kl_sparsity"].item() == pytest.approx(kl_sparsity_penalty(out.code, 0.2, 0.5).item())


def test_the_seed_kl_penalty_is_keras_weight_over_its_batch_size():
    """Seed 002's ``KLDivergenceRegularizer(weight=0.05)`` on batch means, through Keras, which divides an activity
    regularizer's loss by the batch size (32): the family's default is that penalty, not 0.05 times the sum."""
    model = create_model("sparse-kl", input_shape=SHAPE)
    code = torch.rand(32, model.config.code_size, generator=torch.Generator().manual_seed(0)) * 0.5
    q = code.double().mean(dim=0)
    keras_loss = 0.05 * (0.1 * torch.log(0.1 / q) + 0.9 * torch.log(0.9 / (1 - q))).sum() / 32
    assert model.penalties(torch.zeros(32, 64), code)["kl_sparsity"].item() == pytest.approx(keras_loss.item(),
                                                                                           rel=1e-5)


def test_the_seed_kl_autoencoder_reconstructs_better_than_at_the_unscaled_weight():
    from aecore import evaluate, load_dataset
    data = load_dataset("mnist-5k")
    bce, mean = {}, {}
    for beta in (None, 0.05):
        model = create_model("sparse-kl", input_shape=data.image_shape, **({"beta": beta} if beta else {}))
        train(model, data.x_train, TrainSettings(epochs=3))
        bce[beta] = evaluate(model, data.x_test)["bce"]
        with torch.no_grad():
            mean[beta] = model.eval().encode(torch.as_tensor(data.x_test)).mean().item()
    assert bce[None] < bce[0.05] - 0.02, bce  # measured 0.171 against 0.220
    assert 0.05 < mean[None] < 0.2, mean  # still sparse: the units' mean activation near rho = 0.1


def test_weight_decay_is_half_lambda_sum_of_squares():
    model = create_model("l2", input_shape=SHAPE, hidden=(), code_size=4, l2_weight=0.1)
    out = model(torch.rand(3, 64))
    w = [model.encoder.layers[0].weight, model.decoder.layers[0].weight]
    expected = 0.05 * sum((t.double() ** 2).sum().item() for t in w)
    assert out.losses["weight_decay"].item() == pytest.approx(expected, rel=1e-5)
    assert weight_decay_penalty([torch.tensor([3.0, 4.0])], 2.0).item() == pytest.approx(25.0)


@pytest.mark.parametrize("config", [
    {"hidden": (), "code_size": 7, "code_activation": "sigmoid"},  # closed form
    {"hidden": (9,), "code_size": 5, "activation": "gelu", "code_activation": "tanh"},  # torch.func
    {"hidden": (), "code_size": 6, "code_activation": "relu"},
])
def test_contractive_penalty_matches_autograd_jacobian(config):
    torch.manual_seed(0)
    model = create_model("contractive", input_shape=SHAPE, contraction=0.3, **config).double()
    x = torch.rand(4, 64, dtype=torch.float64)
    direct = [torch.autograd.functional.jacobian(lambda v: model.encode(v[None])[0], x[i]).pow(2).sum()
              for i in range(len(x))]
    norms = model.jacobian_norm2(x)
    np.testing.assert_allclose(norms.detach().numpy(), torch.stack(direct).numpy(), rtol=1e-5, atol=1e-5)
    out = model(x)
    assert out.losses["contractive"].item() == pytest.approx(0.3 * torch.stack(direct).mean().item(), rel=1e-5)
    out.loss.backward()  # the penalty is differentiable (double backward through the Jacobian)
    assert model.encoder.layers[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name, config", [
    ("stacked", {"hidden": (9, 7), "code_size": 5, "activation": "elu", "code_activation": "gelu"}),
    ("tied", {"hidden": (8,), "code_size": 4, "activation": "tanh", "code_activation": "relu"}),
    ("denoising", {"hidden": (), "code_size": 6, "code_activation": "sigmoid"}),
    ("contractive", {"hidden": (9,), "code_size": 5, "activation": "relu", "code_activation": "linear"}),
    ("contractive", {"hidden": (9, 11), "code_size": 70, "activation": "tanh"}),  # wider than the 64 pixels
    ("k-sparse", {"code_size": 12, "k": 3}),
    ("vae", {"hidden": (10, 8), "latent_size": 3}),
    ("pca", {"code_size": 5}),
    ("neural-sparse-coding", {"code_size": 9, "threshold": 0.5}),
])
def test_closed_form_encoder_jacobians_are_autograd_s(name, config):
    """The families' own Jacobians (the layers' product; k-sparse's kept rows of W) against autograd's, sample by
    sample, and differentiable as the contractive penalty needs: their norms' gradients are torch.func's."""
    torch.manual_seed(1)
    model = create_model(name, input_shape=SHAPE, **config).double()
    x = torch.rand(4, 64, dtype=torch.float64)
    jac = model.encoder_jacobian(x)
    direct = torch.stack([torch.autograd.functional.jacobian(lambda v: model.encode(v[None])[0], row) for row in x])
    assert jac.shape == direct.shape == (4, model.code_size, 64)
    np.testing.assert_allclose(jac.detach().numpy(), direct.numpy(), rtol=1e-10, atol=1e-12)
    weight = model.first_layer_weights()
    if not weight.requires_grad:  # PCA's components and the sparse coding dictionary are buffers
        return
    (ours,) = torch.autograd.grad(jac.pow(2).sum(), weight)
    by_func = torch.func.vmap(torch.func.jacrev(lambda v: model.encode(v[None])[0]))(x)
    (func,) = torch.autograd.grad(by_func.pow(2).sum(), weight)
    assert ours.abs().sum() > 0
    np.testing.assert_allclose(ours.numpy(), func.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name, config", [
    ("conv", {"channels": (4, 6), "code_size": 5}),
    ("recurrent", {"hidden_size": 7, "code_size": 4}),
    ("vae", {"architecture": "conv", "channels": (4, 6), "latent_size": 3}),
])
def test_replicated_jacobians_are_autograd_s_and_differentiable(name, config):
    """The encoders without a closed form: K copies of each input, one backward pass, against autograd's
    Jacobians sample by sample; with ``create_graph`` their norms' gradients are torch.func's where it applies."""
    from aecore.analysis import replicated_jacobians
    torch.manual_seed(2)
    model = create_model(name, input_shape=SHAPE, **config).double().eval()
    x = torch.rand(5, 64, dtype=torch.float64)
    direct = torch.stack([torch.autograd.functional.jacobian(lambda v: model.encode(v[None])[0], row) for row in x])
    for rows in (2, 8):  # a sample's units over several passes; two samples a pass
        part = replicated_jacobians(model.encode, x, rows=rows)
        assert part.shape == direct.shape and direct.abs().sum() > 0
        np.testing.assert_allclose(part.numpy(), direct.numpy(), rtol=1e-10, atol=1e-12)
    jac = replicated_jacobians(model.encode, x, create_graph=True)
    weight = next(p for p in model.parameters() if p.dim() > 1)
    (ours,) = torch.autograd.grad(jac.pow(2).sum(), weight)
    if name != "recurrent":  # the LSTM's fused kernel has no batching rule for torch.func
        by_func = torch.func.vmap(torch.func.jacrev(lambda v: model.encode(v[None])[0]))(x)
        (func,) = torch.autograd.grad(by_func.pow(2).sum(), weight)
        np.testing.assert_allclose(ours.numpy(), func.numpy(), rtol=1e-9, atol=1e-12)


def test_the_spectrum_leaves_out_the_singular_values_of_a_rank_deficient_jacobian():
    from aecore import analysis
    rng = np.random.default_rng(0)
    jac = rng.normal(size=(6, 3)) @ rng.normal(size=(3, 10))  # rank 3
    values = np.linalg.svd(jac, compute_uv=False)
    kept, n_zero = analysis.nonzero_spectrum(values)
    assert n_zero == 3 and np.allclose(kept, values[:3]) and values[3:].max() < 1e-12
    assert analysis.nonzero_spectrum(np.zeros(4))[1] == 4 and analysis.nonzero_spectrum(np.ones(4))[1] == 0


def test_tied_contractive_decodes_with_the_encoders_weights_transposed():
    """Rifai et al.'s CAE ties the decoder to the encoder (W' = W^T): one weight matrix, used twice, so the decoder
    cannot make up for an encoder shrunk by the penalty."""
    torch.manual_seed(0)
    model = create_model("contractive", input_shape=SHAPE, code_size=5, tied=True).double()
    assert set(model.state_dict()) == {"encoder.layers.0.weight", "encoder.layers.0.bias", "decoder.layers.0.bias"}
    x = torch.rand(4, 64, dtype=torch.float64)
    w, b = model.encoder.layers[0].weight, model.encoder.layers[0].bias
    h = torch.sigmoid(x @ w.T + b)
    torch.testing.assert_close(model.decode(model.encode(x)), h @ w + model.decoder.layers[0].bias)
    c = model.decoder.layers[0].bias
    model(x).losses["reconstruction"].backward()
    through_decoder = torch.autograd.grad(F.binary_cross_entropy_with_logits(h.detach() @ w + c, x), w)[0]
    through_both = torch.autograd.grad(F.binary_cross_entropy_with_logits(h @ w + c, x), w)[0]
    torch.testing.assert_close(w.grad, through_both)  # W gets the gradient of both its uses
    assert (through_both - through_decoder).abs().max() > 1e-4


def test_arora_update_matches_the_formula_on_a_small_example():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # (D=3, K=2)
    y = torch.tensor([[0.9, 0.1, 0.5], [0.0, 2.0, 0.0]])  # (B=2, D=3)
    model = create_model("neural-sparse-coding", input_shape=(3, 1), code_size=2, threshold=1.0, eta=0.5)
    model.dictionary.copy_(a)
    code = model.encode(y)  # threshold C/2 = 0.5 on A^T y = [[0.9, 0.1], [0, 2]]
    assert torch.equal(code, torch.tensor([[0.9, 0.0], [0.0, 2.0]]))
    # by hand: residuals r_i = A x_i - y_i; step = mean_i r_i sgn(x_i)^T
    r1, r2 = np.array([0.0, -0.1, -0.5]), np.array([0.0, 0.0, 0.0])
    step = (np.outer(r1, [1, 0]) + np.outer(r2, [0, 1])) / 2
    new = a.numpy() - 0.5 * step
    new /= np.linalg.norm(new, axis=0, keepdims=True)
    np.testing.assert_allclose(arora_update(a, y, code, 0.5).numpy(), new, atol=1e-6)
    model.training_step(y, model.configure_optimizers(TrainSettings(lr=1e-3), torch.device("cpu")), CTX)
    np.testing.assert_allclose(model.dictionary.numpy(), new, atol=1e-6)
    np.testing.assert_allclose(model.dictionary.norm(dim=0).numpy(), 1.0, atol=1e-6)


def test_neural_sparse_coding_centres_images_on_the_training_mean():
    from aecore.training import start_output_bias
    model = create_model("neural-sparse-coding", input_shape=(3, 1), code_size=2, threshold=1.0, eta=0.5)
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    model.dictionary.copy_(a)
    data = torch.tensor([[1.0, 0.0, 0.2], [0.0, 1.0, 0.4]])
    assert start_output_bias(model, data) and torch.allclose(model.centre, data.mean(0))
    y = torch.tensor([[1.5, 0.5, 0.3], [0.5, 2.5, 0.3]])
    centred = y - data.mean(0)
    code = model.encode(y)
    assert torch.equal(code, hard(centred @ a, 0.5))
    torch.testing.assert_close(model.decode(code), code @ a.t() + data.mean(0))
    model.training_step(y, [], CTX)
    torch.testing.assert_close(model.dictionary, arora_update(a, centred, code, 0.5))
    again = create_model("neural-sparse-coding", input_shape=(3, 1), code_size=2)
    again.load_state_dict({"dictionary": a})  # a run saved before images were centred loads, centred on 0
    assert torch.equal(again.centre, torch.zeros(3))


def hard(z, t):
    return z * (z.abs() >= t)


def test_k_sparse_keeps_exactly_k_and_gradient_flows_only_through_them():
    model = create_model("k-sparse", input_shape=SHAPE, code_size=20, k=4, alpha=2.0)
    x = torch.rand(5, 64)
    z = model.unit_activations(x)
    code = model.encode(x)
    assert ((code != 0).sum(dim=1) == 4).all()
    assert torch.equal(code[code != 0], z[code != 0])  # kept units are unchanged
    assert ((model.features(x) != 0).sum(dim=1) == 8).all()  # alpha * k when encoding features
    kept_min = torch.where(code != 0, z, torch.inf).min(dim=1).values
    dropped_max = torch.where(code == 0, z, -torch.inf).max(dim=1).values
    assert (kept_min >= dropped_max).all()  # the largest ones were kept
    zz = z.detach().requires_grad_()
    keep_top_k(zz, 4).sum().backward()
    assert torch.equal(zz.grad, (code != 0).float())


def test_k_sparse_tied_by_default():
    model = create_model("k-sparse", input_shape=SHAPE, code_size=10, k=3)
    names = {n for n, _ in model.named_parameters()}
    assert names == {"encoder.weight", "encoder.bias", "decoder_bias"}
    untied = create_model("k-sparse", input_shape=SHAPE, code_size=10, k=3, tied=False)
    assert "decoder_weight" in {n for n, _ in untied.named_parameters()}


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_masking_rate_is_p(p):
    x = torch.ones(200, 784)
    gen = torch.Generator().manual_seed(0)
    noisy = corrupt(x, "masking", p, gen)
    assert abs((noisy == 0).float().mean().item() - p) < 0.01
    sp = corrupt(torch.full((200, 784), 0.5), "salt-pepper", p, gen)
    hit = (sp != 0.5).float().mean().item()
    assert abs(hit - p) < 0.01 and abs((sp == 1).float().mean().item() - p / 2) < 0.01
    g = corrupt(torch.full((200, 784), 0.5), "gaussian", 0.1, gen)
    assert abs((g - 0.5).std().item() - 0.1) < 0.005


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_noise_is_masking_that_keeps_each_pixels_mean(p):
    x = torch.full((400, 784), 0.6)
    noisy = corrupt(x, "dropout", p, torch.Generator().manual_seed(0))
    assert abs((noisy == 0).float().mean().item() - p) < 0.01
    assert torch.allclose(noisy[noisy != 0], torch.tensor(0.6 / (1 - p)))  # Keras' Dropout scales the kept ones
    assert abs(noisy.mean().item() - 0.6) < 0.01
    assert torch.equal(corrupt(x, "dropout", 1.0), torch.zeros_like(x))  # all dropped: no 0 / 0


def test_gaussian_noise_keeps_the_black_background_black_on_average():
    """Unclipped, as Vincent et al. 2010 and Keras' GaussianNoise add it: clipped at 0, sigma 0.3 brightened every
    black pixel by 0.3 / sqrt(2 pi) = 0.12 on average, a background no clean test image has."""
    black = torch.zeros(400, 784)
    noisy = corrupt(black, "gaussian", 0.3, torch.Generator().manual_seed(0))
    assert abs(noisy.mean().item()) < 0.003 and abs(noisy.std().item() - 0.3) < 0.003


def test_the_seed_denoiser_reconstructs_clean_digits_that_masking_leaves_too_bright():
    """Seed 002 trains its denoiser through Keras' Dropout(0.5), which scales the kept pixels by 2: clean test images
    then look like the noisy training ones on average. Vincent's masking at 0.5 does not scale them."""
    from aecore import evaluate, load_dataset
    data = load_dataset("mnist-5k")
    assert create_model("denoising", input_shape=data.image_shape).config.noise == "dropout"  # the default
    bce = {}
    for kind in ("dropout", "masking"):
        model = create_model("denoising", input_shape=data.image_shape, noise=kind, noise_level=0.5)
        train(model, data.x_train, TrainSettings(epochs=2))
        bce[kind] = evaluate(model, data.x_test)["bce"]
    assert bce["dropout"] < bce["masking"] - 0.02, bce  # measured 0.154 against 0.190


def test_psnr_formula():
    clean = torch.zeros(2, 4)
    other = torch.tensor([[0.1, 0.1, 0.1, 0.1], [0.0, 0.0, 0.0, 0.2]])
    np.testing.assert_allclose(psnr(clean, other).numpy(), [20.0, 10 * math.log10(100)], rtol=1e-5)


def test_denoising_corrupts_only_while_training():
    model = create_model("denoising", input_shape=SHAPE, noise="masking", noise_level=0.5)
    x = torch.rand(4, 64)
    model.eval()
    clean = model(x)
    assert torch.equal(clean.recon, model.decode(model.encode(x)))
    model.train()
    noisy = model(x)
    assert not torch.equal(noisy.code, clean.code)
    # the target stays the clean input
    from aecore.losses import reconstruction_loss
    assert noisy.losses["reconstruction"].item() == pytest.approx(reconstruction_loss(noisy.recon, x, "logits").item())


@pytest.mark.parametrize("decoder", ["transposed", "unpool"])
def test_conv_round_trips_shapes(decoder):
    model = create_model("conv", input_shape=(28, 28), channels=(4, 8), code_size=6, decoder=decoder)
    x = torch.rand(3, 784)
    out = model(x)
    assert out.code.shape == (3, 6) and out.recon.shape == (3, 784)
    assert model.decode(torch.randn(2, 6)).shape == (2, 784)  # a code with no pooling positions
    assert model.first_layer_weights().shape == (4, 3, 3)
    assert model.unit_activations(x).shape == (3, 4)


def test_unpooling_returns_values_to_the_pooled_positions():
    model = create_model("conv", input_shape=(4, 4), channels=(1,), kernel=1, code_size=2, decoder="unpool")
    x = torch.zeros(1, 16)
    x[0, 5] = 1.0  # row 1, col 1: inside the top-left 2x2 window, not at its corner
    with torch.no_grad():
        model.enc_convs[0].weight.fill_(1.0)  # relu(x): the first window's maximum is at pixel 5
        model.enc_convs[0].bias.zero_()
        _, switches = model._encode(x)
        idx, size = switches[0]
        assert idx[0, 0, 0, 0].item() == 5 and tuple(size) == (4, 4)
        pooled = torch.zeros(1, 1, 2, 2)
        pooled[0, 0, 0, 0] = 7.0
        back = torch.nn.functional.max_unpool2d(pooled, idx, 2, output_size=size)
        assert back[0, 0, 1, 1].item() == 7.0 and back.sum().item() == 7.0


def test_recurrent_round_trips_shapes():
    model = create_model("recurrent", input_shape=(28, 28), hidden_size=12, code_size=5)
    x = torch.rand(3, 784)
    out = model(x)
    assert out.code.shape == (3, 5) and out.recon.shape == (3, 784)
    assert model.decode(torch.zeros(2, 5)).shape == (2, 784)


@pytest.mark.parametrize("name,config,reason", [
    ("k-sparse", {"code_size": 10, "k": 11}, "larger than the code"),
    ("k-sparse", {"code_size": 10, "k": 4, "alpha": 3.0}, "alpha"),
    ("sparse-kl", {"rho": 1.5}, "rho"),
    ("sparse-kl", {"rho": 0.0}, "rho"),
    ("conv", {"input_shape": (28, 28), "channels": (8, 16, 32)}, "at most 2"),
    ("conv", {"kernel": 4}, "odd"),
    ("denoising", {"noise": "pink"}, "noise"),
])
def test_impossible_settings_are_refused_with_a_reason(name, config, reason):
    with pytest.raises(ConfigError, match=reason):
        create_model(name, **config)


def test_sparse_models_end_up_sparser_than_plain(digits):
    """KL target sparsity drives mean activations toward rho; the plain sigmoid code does not."""
    x = torch.as_tensor(digits.x_train)
    means = {}
    for name, extra in [("stacked", {"code_activation": "sigmoid"}), ("sparse-kl", {"rho": 0.05, "beta": 3.0})]:
        torch.manual_seed(0)
        model = create_model(name, input_shape=SHAPE, hidden=(), code_size=32, **extra)
        train(model, x, TrainSettings(epochs=8, lr=3e-3))
        with torch.no_grad():
            means[name] = model.encode(x).mean().item()
    assert means["sparse-kl"] < 0.1 < means["stacked"]


def test_compare_job_trains_in_turn_and_stop_skips_the_rest(digits):
    from aecore.compare import Contender, CompareJob
    contenders = [Contender("a", "stacked", {"hidden": (8,), "code_size": 4}),
                  Contender("b", "sparse-l1", {"hidden": (), "code_size": 8})]
    job = CompareJob(contenders, digits, TrainSettings(epochs=500, seed=3)).start()
    for _ in range(2000):  # until the first run has taken a step
        if job.jobs[0].progress().step > 0:
            break
        time.sleep(0.01)
    job.stop()
    assert job.join(timeout=60)
    assert job.jobs[0].progress().status == "stopped" and job.jobs[1].progress().status == "pending"
    with pytest.raises(ConfigError, match="larger than the code"):
        CompareJob([Contender("bad", "k-sparse", {"code_size": 4, "k": 9})], digits, TrainSettings())


def test_a_comparison_s_bar_weighs_each_run_by_its_steps(digits):
    """A talk preset's GAN (15,000 steps) after an autoencoder (1,250) held the bar at two thirds for minutes when
    each run counted alike."""
    from types import SimpleNamespace
    from aecore.compare import Contender, CompareJob
    contenders = [Contender("a", "stacked", {"hidden": (8,), "code_size": 4}, {"epochs": 1}),
                  Contender("b", "stacked", {"hidden": (8,), "code_size": 4}, {"epochs": 3, "batch_size": 64})]
    job = CompareJob(contenders, digits, TrainSettings(batch_size=32))
    assert job.weights == [45, 69]  # 1 x ceil(1,438 / 32), 3 x ceil(1,438 / 64)
    assert job.fraction == 0.0
    job.jobs[0].progress = lambda: SimpleNamespace(status="finished", fraction=1.0)
    assert job.fraction == pytest.approx(45 / 114)  # not one half
    job.jobs[1].progress = lambda: SimpleNamespace(status="training", fraction=0.5)
    assert job.fraction == pytest.approx((45 + 34.5) / 114)


def test_a_comparison_s_time_left_is_the_running_run_s_eta_and_the_rest_at_the_pace_so_far(digits):
    """The gallery's bar said nothing of the six minutes a samples preset takes."""
    import math
    from types import SimpleNamespace
    from aecore.compare import Contender, CompareJob
    from pages.ui.runs import fmt_left
    small = {"hidden": (8,), "code_size": 4}
    job = CompareJob([Contender(n, "stacked", small, {"epochs": e}) for n, e in (("a", 1), ("b", 2), ("c", 4))],
                     digits, TrainSettings(batch_size=32))
    assert job.weights == [45, 90, 180]
    pending = SimpleNamespace(status="pending", step=0, elapsed=0.0, eta=math.nan, done=False)
    for j in job.jobs:
        j.progress = lambda: pending
    assert job.seconds_left() is None  # nothing timed yet: no guess
    job.jobs[0].progress = lambda: SimpleNamespace(status="finished", step=45, elapsed=9.0, eta=0.0, done=True)
    job.jobs[1].progress = lambda: SimpleNamespace(status="running", step=30, elapsed=3.0, eta=6.0, done=False)
    # b's own 6 s, then c's 180 steps at (9 + 3) s / 75 steps
    assert job.seconds_left() == pytest.approx(6.0 + 180 * 12.0 / 75)
    assert [fmt_left(s) for s in (None, 3, 41, 59.4, 200, 7200)] == [
        "", "about 5 s left", "about 40 s left", "about 1 min left", "about 3 min left", "about 2.0 h left"]


def test_code_l2_penalty_and_it_pulls_codes_in(digits):
    from aecore.models.code_l2 import code_l2_penalty
    assert code_l2_penalty(torch.tensor([[3.0, 4.0], [0.0, 1.0]]), 0.5).item() == pytest.approx(0.5 * 13)
    x = torch.as_tensor(digits.x_train)
    norms = {}
    for weight in (1e-6, 1e-1):
        torch.manual_seed(0)
        model = create_model("code-l2", input_shape=SHAPE, hidden=(32,), code_l2=weight)
        out = model(x[:5])
        assert out.losses["code_l2"].item() == pytest.approx(weight * out.code.pow(2).sum(1).mean().item(), rel=1e-5)
        train(model, x, TrainSettings(epochs=4, lr=3e-3))
        with torch.no_grad():
            norms[weight] = model.encode(x).norm(dim=1).mean().item()
    assert norms[1e-1] < norms[1e-6] / 2
