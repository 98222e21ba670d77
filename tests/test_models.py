"""Contract tests over every registered model, and the per-family checks."""
import numpy as np
import pytest
import torch

from aecore import AEOutput, StepContext, ConfigError, TrainSettings, create_model, list_models, model_spec, train
from aecore.config import param_specs

SHAPE = (8, 8)


def small(name):
    if model_spec(name).capabilities.modality == "text":
        return create_model(name, vocab_size=20, max_len=8, embedding_size=8, hidden_size=16)
    return create_model(name, input_shape=SHAPE)


@pytest.mark.parametrize("name", list_models(modality="image"))
def test_output_contract(name):
    model = small(name)
    caps = model_spec(name).capabilities
    x = torch.rand(5, 64)
    out = model(x)
    assert isinstance(out, AEOutput)
    assert out.losses and all(v.dim() == 0 for v in out.losses.values())
    assert set(out.units) <= set(out.losses)
    assert torch.isclose(out.loss, sum(out.losses.values()))
    if caps.reconstructs:
        assert out.recon.shape == (5, 64) and "reconstruction" in out.losses
        pixels = model.reconstruct(x)
        assert pixels.shape == (5, 64) and pixels.min() >= 0 and pixels.max() <= 1
    if caps.encodes:
        assert out.code.shape == (5, model.code_size)
    if caps.posterior:
        assert isinstance(out.posterior, torch.distributions.Distribution)
        assert out.posterior.mean.shape == (5, model.code_size)
    if caps.samples:
        model.eval()
        model.prepare_sampling(type("Data", (), {"x_train": torch.rand(50, 64).numpy()})())
        samples = model.sample(7, torch.Generator().manual_seed(0))
        again = model.sample(7, torch.Generator().manual_seed(0))
        assert samples.shape == (7, 64) and samples.min() >= 0 and samples.max() <= 1
        assert torch.equal(samples, again)  # the generator decides the samples


@pytest.mark.parametrize("name", list_models())
def test_config_metadata_drives_controls(name):
    spec = model_spec(name)
    specs = [s for s in param_specs(spec.config_cls) if s.ui]
    assert specs, "a model needs at least one hyperparameter control"
    for s in specs:
        assert s.kind in ("int", "float", "bool", "choice", "sizes")
        if s.kind in ("int", "float"):
            assert s.min is not None and s.max is not None and s.min <= s.default <= s.max
    for preset in spec.presets.values():
        create_model(name, **preset)  # every preset builds


def test_a_field_used_only_under_another_names_an_earlier_field_and_its_values():
    from dataclasses import dataclass
    from aecore.config import param
    vae = {s.name: s for s in param_specs(model_spec("vae").config_cls)}
    assert vae["channels"].when == (("architecture", ("conv",)),) and vae["latent_size"].when == ()

    @dataclass(frozen=True)
    class Typo:
        kind: str = param("a", choices=("a", "b"))
        size: int = param(1, min=1, max=9, when={"kind": "c"})  # no such choice
    with pytest.raises(TypeError, match="Typo.size"):
        param_specs(Typo)

    @dataclass(frozen=True)
    class Later:
        size: int = param(1, min=1, max=9, when={"kind": "a"})  # the form draws kind after size
        kind: str = param("a", choices=("a", "b"))
    with pytest.raises(TypeError, match="Later.size"):
        param_specs(Later)


@pytest.mark.parametrize("name", list_models(modality="image", reconstructs=True))
def test_few_steps_lower_the_loss(name, digits):
    torch.manual_seed(0)
    model = create_model(name, input_shape=digits.image_shape)
    x = torch.as_tensor(digits.x_train[:512])
    before = model(x).loss.item()
    train(model, x, TrainSettings(epochs=3, batch_size=32, lr=3e-3, seed=0))
    after = model(x).loss.item()
    assert after < before * 0.9, (before, after)


def test_unknown_model_lists_valid_names():
    with pytest.raises(KeyError) as e:
        create_model("no-such-model")
    for name in list_models():
        assert name in str(e.value)


def test_bad_config_is_refused_with_reason():
    with pytest.raises(ConfigError, match="code_size"):
        create_model("stacked", code_size=0)
    with pytest.raises(ConfigError, match="activation"):
        create_model("stacked", activation="swish")
    with pytest.raises(ConfigError, match="exceeds"):
        create_model("pca", input_shape=SHAPE, code_size=100)
    with pytest.raises(ConfigError, match="unknown setting"):
        create_model("stacked", hidden_size=3)


def test_seed_recipe_default():
    model = create_model("stacked")
    sizes = [(l.in_features, l.out_features) for l in model.encoder.layers]
    assert sizes == [(784, 100), (100, 30)]
    assert type(model.encoder.acts[0]).__name__ == "GELU" and type(model.encoder.acts[1]).__name__ == "GELU"
    assert model.output_kind == "logits"
    hinton = create_model("stacked", **model_spec("stacked").presets["Hinton & Salakhutdinov (784-1000-500-250-30)"])
    assert [l.out_features for l in hinton.encoder.layers] == [1000, 500, 250, 30]
    assert [l.out_features for l in hinton.decoder.layers] == [250, 500, 1000, 784]


def test_tied_decoder_shares_encoder_storage():
    model = create_model("tied", input_shape=SHAPE, hidden=(20,), code_size=5)
    for enc, dec in zip(model.encoder.layers, reversed(list(model.decoder_layers))):
        assert dec.weight.data_ptr() == enc.weight.data_ptr()
        assert dec.weight.shape == enc.weight.t().shape
    # only the encoder's weights and every layer's biases are parameters: half the weights of `stacked`
    stacked = create_model("stacked", input_shape=SHAPE, hidden=(20,), code_size=5)
    n_w = lambda m: sum(p.numel() for n, p in m.named_parameters() if n.endswith("weight"))  # noqa: E731
    assert n_w(model) * 2 == n_w(stacked)
    # the decoder's gradient reaches the shared matrix: a change through it changes decoding
    x = torch.rand(4, 64)
    model(x).loss.backward()
    assert model.encoder.layers[0].weight.grad is not None
    with torch.no_grad():
        before = model.decode(torch.ones(1, 5)).clone()
        model.encoder.layers[0].weight.add_(0.5)
        assert not torch.allclose(before, model.decode(torch.ones(1, 5)))


def test_pca_matches_scikit_learn(digits):
    from sklearn.decomposition import PCA as SkPCA
    x = digits.x_train
    model = create_model("pca", input_shape=SHAPE, code_size=10)
    train(model, x, TrainSettings())
    ours = model.reconstruct(torch.as_tensor(digits.x_test)).numpy()
    sk = SkPCA(n_components=10).fit(x)
    theirs = np.clip(sk.inverse_transform(sk.transform(digits.x_test)), 0, 1)
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    # codes agree up to the sign of each axis
    codes = model.encode(torch.as_tensor(digits.x_test)).detach().numpy()
    np.testing.assert_allclose(np.abs(codes), np.abs(sk.transform(digits.x_test)), atol=1e-3)


class _NoStep:
    def step(self):
        pass


@pytest.mark.parametrize("act,code_act", [("gelu", "gelu"), ("relu", "linear"), ("elu", "elu"), ("tanh", "linear"),
                                          ("sigmoid", "sigmoid")])
@pytest.mark.parametrize("output_kind", ["logits", "linear"])
def test_hand_derived_step_matches_autograd(act, code_act, output_kind):
    """The stacked model's tape-free training step computes the loss and gradients autograd would, bitwise."""
    fast = create_model("stacked", input_shape=SHAPE, hidden=(20, 10), code_size=5, activation=act,
                        code_activation=code_act)
    fast.output_kind = output_kind
    ref = create_model("stacked", input_shape=SHAPE, hidden=(20, 10), code_size=5, activation=act,
                       code_activation=code_act)
    ref.output_kind = output_kind
    ref.load_state_dict(fast.state_dict())
    x = torch.rand(7, 64)
    loss = fast.training_step(x, [_NoStep()], StepContext(0, 0, 1, 1))["reconstruction"]
    out = ref(x)
    out.loss.backward()
    assert torch.equal(loss, out.loss.detach())
    for p, q in zip(fast.parameters(), ref.parameters()):
        assert torch.equal(p.grad, q.grad)


@pytest.mark.parametrize("shape", [(32, 100), (7, 1), (3, 4, 5)])
def test_gelu_is_the_exact_gelu_and_its_derivative(shape):
    """``blocks.gelu`` (ATen's kernel reached through a transposed view) against the formulas in float64:
    z * Phi(z), and d/dz = Phi(z) + z * phi(z)."""
    from aecore.models.blocks import gelu, gelu_backward
    z64 = torch.randn(*shape, dtype=torch.float64) * 3
    z = z64.float().requires_grad_()
    h = gelu(z)
    assert h.shape == z.shape and h.is_contiguous()
    phi = torch.exp(-z64 ** 2 / 2) / np.sqrt(2 * np.pi)
    cdf = 0.5 * (1 + torch.erf(z64 / np.sqrt(2)))
    torch.testing.assert_close(h.double(), z64 * cdf, atol=1e-6, rtol=1e-5)
    g = torch.randn(*shape)
    h.backward(g)
    exact = g.double() * (cdf + z64 * phi)
    torch.testing.assert_close(z.grad.double(), exact, atol=1e-6, rtol=1e-5)
    assert torch.equal(gelu_backward(g, z.detach()), z.grad)  # the tape-free step's backward is autograd's


@pytest.mark.parametrize("name", list_models())
def test_greedy_support_is_what_the_model_gives(name):
    model = small(name)
    assert model.supports_greedy() == bool(model.greedy_stages())
    assert model_spec(name).builder.supports_greedy() == model.supports_greedy()


@pytest.mark.parametrize("name", [n for n in list_models() if "hidden" in model_spec(n).config_cls.__dataclass_fields__])
def test_a_config_too_big_to_build_is_refused_before_anything_is_allocated(name):
    """Every family with hidden layers (the denoising family's count failed, and it built 2.6 GB unchecked)."""
    import resource
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ConfigError, match="weights"):
        create_model(name, hidden=(4096,) * 20)  # within every slider's range: 644 million weights
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # kB: not the 2.6 GB it needs
    create_model(name, hidden=(1000, 500, 250))  # Hinton's net is fine
