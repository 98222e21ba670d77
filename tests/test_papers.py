"""The papers' recipes (issue 18): the cosine schedule, k-sparse's schedule of k, the classifier stages against direct
computations, and a recipe run end to end through the CLI on the embedded digits."""
import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from aecore import ConfigError, TrainingJob, TrainSettings, create_model, train
from aecore.models import ksparse
from aecore.models.base import StepContext
from aecore.optim import LeanSGD
from aecore.papers import PAPERS, figure_of, paper_for, reproduce
from aecore.probe import error_rate, fine_tune, logistic_on_codes, logistic_regression, split_validation
from aecore.store import RunStore
from aecore.training import lr_factor


def test_cosine_factor_falls_from_one_to_zero_along_half_a_cosine():
    assert lr_factor("cosine", 0, 100) == 1.0
    assert lr_factor("cosine", 50, 100) == pytest.approx(0.5)
    assert lr_factor("cosine", 25, 100) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_factor("cosine", 99, 100) < 1e-3
    assert lr_factor("constant", 99, 100) == 1.0


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_each_step_runs_at_the_scheduled_learning_rate(digits, schedule):
    seen = []
    model = create_model("stacked", input_shape=digits.image_shape, hidden=(8,), code_size=4)
    step = model.training_step

    def spy(x, optimizers, ctx):
        seen.append(optimizers[0].lr)
        return step(x, optimizers, ctx)

    model.training_step = spy
    train(model, digits.x_train[:320], TrainSettings(epochs=2, batch_size=32, lr=0.01, lr_schedule=schedule))
    expected = [0.01 * lr_factor(schedule, i, 20) for i in range(20)]
    assert seen == pytest.approx(expected)


def test_ksparse_keeps_the_scheduled_k_while_training_and_k_afterwards():
    model = create_model("k-sparse", input_shape=(8, 8), code_size=40, k=5, k_start=30, k_schedule=0.5)
    assert [model.scheduled_k(s, 100) for s in (0, 25, 48, 50, 99)] == [30, 18, 6, 5, 5]
    assert create_model("k-sparse", input_shape=(8, 8), code_size=20, k=5, k_start=30).scheduled_k(0, 100) == 20
    assert create_model("k-sparse", input_shape=(8, 8), code_size=40, k=5, k_start=3).scheduled_k(0, 100) == 5
    live = []
    keep = ksparse.keep_top_k

    def spy(z, k):
        code = keep(z, k)
        live.append(int((code != 0).sum(1).max()))
        return code

    ksparse.keep_top_k = spy
    try:
        x = torch.rand(512, 64)
        train(model, x, TrainSettings(epochs=2, batch_size=64, output_bias_from_data=False))
        during = list(live)
        live.clear()
        model.encode(x[:8])
    finally:
        ksparse.keep_top_k = keep
    steps = [model.scheduled_k(s, 16) for s in range(16)]
    assert steps[0] == 30 and steps[-1] == 5
    # every training step's codes keep that step's k (the live view's previews come between steps, with k)
    assert [n for n in during if n != 5][:len([k for k in steps if k != 5])] == [k for k in steps if k != 5]
    assert live == [5]


def _ksparse_step_grads(aux_k: int, steps: int = 2):
    """Two k-sparse steps on 8 images where units 4 and 5 never win the top 2 (their biases are -100); the
    reported dead units and the encoder's gradient at the last step."""
    torch.manual_seed(0)
    model = create_model("k-sparse", input_shape=(4, 4), code_size=6, k=2, k_start=2, alpha=1.0, dead_after=8,
                         aux_k=aux_k)
    with torch.no_grad():
        model.encoder.bias[4:] = -100.0
    seen = []
    opt = type("Opt", (), {"zero_grad": lambda self, set_to_none=True: model.zero_grad(),
                           "step": lambda self: seen.append(model.encoder.weight.grad.clone())})()
    x = torch.rand(8, 16)
    dead = [float(model.training_step(x, [opt], StepContext(i, 0, 100, 10))["dead_units"]) for i in range(steps)]
    assert dead[-1] == float((model.images_since_win > 8).sum())
    return dead, seen[-1]


def test_ksparse_reports_dead_units_and_auxk_gives_them_gradient():
    """A unit with no place in the top k for more than dead_after images is dead (8 images: not yet after one step
    of 8, dead after two); without AuxK a dead unit gets no gradient, with it the dead units' rows do."""
    dead, grad = _ksparse_step_grads(aux_k=0)
    assert dead[0] == 0.0 and dead[1] >= 2.0  # units 4 and 5 at least
    assert float(grad[4:].abs().max()) == 0.0 and float(grad[:4].abs().max()) > 0
    dead, grad = _ksparse_step_grads(aux_k=6)
    assert dead[0] == 0.0 and dead[1] >= 2.0
    assert float(grad[4:].abs().sum(1).min()) > 0


def test_auxk_loss_is_the_dead_units_top_k_rebuilding_the_residual():
    torch.manual_seed(0)
    model = create_model("k-sparse", input_shape=(2, 3), code_size=5, k=1, k_start=1, alpha=1.0, aux_k=2)
    z, residual = torch.randn(4, 5), torch.randn(4, 6)
    dead = torch.tensor([True, False, True, True, False])
    w = model.encoder.weight.detach().numpy()  # (K, D): tied, the decoder is its transpose
    zn, expected = z.numpy(), 0.0
    for row, r in zip(zn, residual.numpy()):
        keep = sorted(np.flatnonzero(dead.numpy()), key=lambda u: -row[u])[:2]
        expected += float((((row[keep] @ w[keep]) - r) ** 2).sum())
    got = float(model.aux_loss(z, dead, residual).detach())
    assert got == pytest.approx(expected / residual.numel(), rel=1e-5)
    with pytest.raises(ConfigError, match="aux_k"):
        create_model("k-sparse", input_shape=(2, 3), code_size=5, k=1, aux_k=2, output="sigmoid")


def test_ksparse_sgd_steps_on_the_error_summed_over_pixels_as_the_paper():
    """optimizer = sgd: one step with lr 0.01 (momentum 0 here) is a plain gradient step of 0.01 on the squared error
    summed over the pixels and averaged over the batch (ours is averaged over both); init_std starts the weights
    Gaussian with that deviation."""
    torch.manual_seed(0)
    model = create_model("k-sparse", input_shape=(4, 5), code_size=12, k=3, k_start=3, optimizer="sgd", momentum=0.0,
                         init_std=0.1)
    assert float(model.encoder.weight.detach().std()) == pytest.approx(0.1, rel=0.15)
    (opt,) = model.configure_optimizers(TrainSettings(lr=0.01), torch.device("cpu"))
    assert isinstance(opt, LeanSGD)
    x = torch.rand(6, 20)
    w = model.encoder.weight.detach().clone().requires_grad_(True)
    b, c = model.encoder.bias.detach().clone(), model.decoder_bias.detach().clone()
    z = x @ w.t() + b
    summed = ((ksparse.keep_top_k(z, 3) @ w + c - x) ** 2).sum(1).mean()  # tied: the decoder is W^T
    (grad,) = torch.autograd.grad(summed, w)
    model.training_step(x, [opt], StepContext(0, 0, 1, 1))
    assert torch.allclose(model.encoder.weight.detach(), w.detach() - 0.01 * grad, atol=1e-6)
    adam = create_model("k-sparse", input_shape=(4, 5), code_size=12, k=3)
    assert not isinstance(adam.configure_optimizers(TrainSettings(), torch.device("cpu"))[0], LeanSGD)


def test_logistic_regression_is_scikit_learns_with_c_one_over_l2_n():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    x = (rng.normal(size=(400, 5)) + np.eye(3, 5)[y] * 1.5).astype(np.float32)
    l2 = 1e-2
    head = logistic_regression(torch.as_tensor(x), torch.as_tensor(y), 3, l2)
    ref = LogisticRegression(C=1.0 / (l2 * len(x)), tol=1e-10, max_iter=10_000).fit(x, y)
    # both are the unique minimum of the same strictly convex objective (softmax logits are defined up to a shift)
    ours = head.weight.detach().numpy() - head.weight.detach().numpy().mean(0)
    theirs = ref.coef_ - ref.coef_.mean(0)
    assert np.abs(ours - theirs).max() < 1e-3
    assert error_rate(head, torch.as_tensor(x), torch.as_tensor(y)) == pytest.approx(1 - ref.score(x, y))


def test_logistic_on_codes_picks_the_l2_weight_of_lowest_validation_error():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 1200)
    codes = rng.normal(size=(1200, 30)) + 3.0 * np.eye(4, 30)[y]
    out = logistic_on_codes(codes[:1000], y[:1000], codes[1000:], y[1000:], l2_grid=(1e-4, 1.0), n_val=200)
    assert set(out["validation_errors"]) == {1e-4, 1.0}
    assert out["l2"] == min(out["validation_errors"], key=out["validation_errors"].get)
    assert out["validation_errors"][1.0] > out["validation_errors"][1e-4]  # a huge weight flattens the classes
    assert 0.0 < out["test_error"] < 0.3


def test_split_validation_is_a_seeded_partition():
    tr, va = split_validation(100, 20)
    assert len(va) == 20 and sorted(np.concatenate([tr, va]).tolist()) == list(range(100))
    assert np.array_equal(va, split_validation(100, 20)[1])


def test_fine_tune_keeps_the_epoch_of_lowest_validation_error(digits):
    model = create_model("contractive", input_shape=digits.image_shape, code_size=32)
    train(model, digits.x_train, TrainSettings(epochs=1))
    before = model.encoder.layers[0].weight.detach().clone()
    out = fine_tune(model, digits, epochs=12, patience=3, lr=0.1, batch_size=50)
    errors = out["validation_errors"]
    assert out["validation_error"] == min(errors) and errors[out["best_epoch"] - 1] == min(errors)
    assert out["epochs"] == len(errors) and (out["epochs"] == 12 or out["epochs"] - out["best_epoch"] == 3)
    assert out["validation_error"] < 0.5 and out["test_error"] < 0.5 and out["train_error"] < 0.5  # ten classes
    assert not torch.equal(model.encoder.layers[0].weight, before)  # the encoder itself was tuned


def test_each_recipe_names_a_registered_preset_and_is_found_from_it():
    for recipe in PAPERS.values():
        assert paper_for(recipe.model, preset=recipe.preset) is recipe
        assert paper_for(recipe.model, config=recipe.config()) is recipe
        TrainSettings(**recipe.train_settings()), TrainSettings(**recipe.train_settings(full=True))
    hinton = PAPERS["hinton"]
    assert paper_for("stacked", config={}) is None  # the seed recipe is not the paper's network
    assert not hinton.matches("stacked", {**hinton.config(), "code_size": 20})
    cae, ksparse = PAPERS["contractive"], PAPERS["k-sparse"]
    assert cae.train_settings(full=True)["epochs"] > cae.train_settings()["epochs"]
    # k-sparse's optimiser, start and AuxK change its training, not its network: an Adam run is scored as the paper's
    assert ksparse.config()["optimizer"] == "sgd" and ksparse.matches("k-sparse", {"code_size": 1000, "k": 25})
    assert hinton.train_settings(full=True) == hinton.train_settings()  # its budget version is the full one


def test_reproduce_trains_the_preset_and_reports_its_figure(digits, tmp_path):
    store = RunStore(tmp_path)
    recipe = dataclasses.replace(PAPERS["hinton"], settings={"epochs": 1, "batch_size": 64})
    parts = []
    out = reproduce(recipe, digits, store, progress=lambda part, f: parts.append(part))
    model, record = store.load(out["run"])
    assert record.config["hidden"] == [1000, 500, 250] and record.settings["epochs"] == 1
    assert out["figure"] == pytest.approx(model.evaluate(digits)["sse_per_image"], abs=1e-4)
    assert out["paper"] == 3.00 and out["train_seconds"] == round(record.seconds, 1)
    assert "training" in parts and "reconstruction" in parts
    # a saved run of another network is refused, with the reason
    job = TrainingJob("stacked", {}, digits, TrainSettings(epochs=1), store=store).start()
    job.join()
    with pytest.raises(ConfigError, match="not the network"):
        reproduce(recipe, digits, store, run_id=job.run_id)


def test_the_logistic_stage_is_logistic_on_the_alpha_k_features(digits):
    recipe = dataclasses.replace(PAPERS["k-sparse"], stage_options={"l2_grid": (1e-3,), "n_val": 200})
    model = create_model("k-sparse", input_shape=digits.image_shape, code_size=64, k=5, alpha=3.0)
    train(model, digits.x_train, TrainSettings(epochs=2))
    out = figure_of(recipe, model, digits)
    from aecore.latent import encode_all
    direct = logistic_on_codes(encode_all(model, digits.x_train), digits.y_train, encode_all(model, digits.x_test),
                               digits.y_test, l2_grid=(1e-3,), n_val=200)
    assert out["figure"] == pytest.approx(100 * direct["test_error"])
    assert (encode_all(model, digits.x_test[:5]) != 0).sum(1).max() == 15  # alpha*k units kept


def test_the_paper_command_prints_the_figure_beside_the_papers(digits, tmp_path, capsys):
    from aecore.__main__ import main
    job = TrainingJob("contractive", {"code_size": 1000, "tied": True}, digits, TrainSettings(epochs=1),
                      store=RunStore(tmp_path)).start()
    job.join()
    recipe = PAPERS["contractive"]
    PAPERS["contractive"] = dataclasses.replace(recipe, stage_options={"epochs": 3, "patience": 2, "lr": 0.05})
    try:
        assert main(["--runs-dir", str(tmp_path), "paper", "contractive", "--dataset", "digits",
                     "--run", job.run_id]) == 0
    finally:
        PAPERS["contractive"] = recipe
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["recipe"] == "contractive" and out["paper"] == 1.14 and out["run"] == job.run_id
    assert out["version"] == "saved run" and 0 <= out["figure"] <= 100 and out["epochs"] <= 3
    assert main(["--runs-dir", str(tmp_path), "paper", "nonsense"]) == 2
    assert "valid: hinton, k-sparse, contractive" in capsys.readouterr().err


def test_ctrl_c_while_a_recipe_trains_saves_the_run_and_says_its_id(digits, tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    recipe = dataclasses.replace(PAPERS["hinton"], settings={"epochs": 50, "batch_size": 16})
    join = TrainingJob.join
    calls = []

    def interrupted(self, timeout=None):
        calls.append(timeout)
        if len(calls) == 2:  # as Ctrl-C lands while the CLI waits on the job
            raise KeyboardInterrupt
        return join(self, timeout)

    monkeypatch.setattr(TrainingJob, "join", interrupted)
    with pytest.raises(ConfigError, match="stopped; run .* was saved") as e:
        reproduce(recipe, digits, store)
    run_id = str(e.value).split()[2]
    assert store.record(run_id).status == "stopped"


def test_the_paper_command_names_a_missing_run_before_loading_data(tmp_path, capsys):
    from aecore.__main__ import main
    assert main(["--runs-dir", str(tmp_path), "paper", "hinton", "--run", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_the_paper_command_scores_a_saved_run_on_the_data_it_was_trained_on(digits, tmp_path, capsys, monkeypatch):
    """A run trained on other data than ``--dataset`` asked was scored on images it never saw and printed beside the
    paper's figure; it is refused before any data loads, and without ``--dataset`` the run's own data is used, the
    figure marked as not comparable with the paper's (measured on full MNIST)."""
    import aecore.__main__ as cli
    job = TrainingJob("k-sparse", PAPERS["k-sparse"].config(), digits, TrainSettings(epochs=1),
                      store=RunStore(tmp_path)).start()
    job.join()
    loads = []
    load = cli.load_dataset
    monkeypatch.setattr(cli, "load_dataset", lambda name: loads.append(name) or load(name))
    assert cli.main(["--runs-dir", str(tmp_path), "paper", "k-sparse", "--run", job.run_id,
                     "--dataset", "mnist-5k"]) == 2
    assert f"run {job.run_id} was trained on digits, not mnist-5k" in capsys.readouterr().err and loads == []
    assert cli.main(["--runs-dir", str(tmp_path), "paper", "k-sparse", "--run", job.run_id]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out.strip().splitlines()[-1])
    assert loads == ["digits"] and out["dataset"] == "digits" and out["comparable"] is False
    assert "do not compare" in captured.err and 0 <= out["figure"] <= 100
