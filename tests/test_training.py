"""The training loop: determinism, greedy pretraining, stop, divergence guard, progress."""
import os
import threading

import numpy as np
import pytest
import torch

from aecore import TrainSettings, build_model, create_model, train
from aecore.training import pick_device, start_output_bias


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_same_seed_same_weights(digits):
    runs = []
    for _ in range(2):
        model = build_model("stacked", {"input_shape": (8, 8)}, seed=7)
        train(model, digits.x_train[:300], TrainSettings(epochs=2, seed=7))
        runs.append(_weights(model))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    other = build_model("stacked", {"input_shape": (8, 8)}, seed=8)
    train(other, digits.x_train[:300], TrainSettings(epochs=2, seed=8))
    assert not torch.equal(runs[0]["encoder.layers.0.weight"], other.state_dict()["encoder.layers.0.weight"])


def test_greedy_layerwise_stacks_then_finetunes(digits):
    x = torch.as_tensor(digits.x_train[:600])
    model = build_model("stacked", {"input_shape": (8, 8), "hidden": (32, 16), "code_size": 8}, seed=0)
    init = _weights(model)
    p = train(model, x, TrainSettings(greedy=True, greedy_epochs=2, epochs=2, seed=0, lr=3e-3))
    phases = [r["phase"] for r in p.epoch_rows]
    assert phases == ["greedy layer 1/3"] * 2 + ["greedy layer 2/3"] * 2 + ["greedy layer 3/3"] * 2 + \
        ["fine-tuning"] * 2
    # each layer's loss went down within its own stage
    for stage in ("greedy layer 1/3", "greedy layer 2/3", "greedy layer 3/3"):
        rows = [r["train_reconstruction"] for r in p.epoch_rows if r["phase"] == stage]
        assert rows[1] < rows[0]
    # every encoder layer and its mirror moved during pretraining, and the stacked whole reconstructs
    after = _weights(model)
    for k in init:
        assert not torch.equal(init[k], after[k]), k
    assert p.status == "finished"
    assert model(x).losses["reconstruction"].item() < 0.45


def test_greedy_without_finetune_trains_only_the_stages(digits):
    model = build_model("tied", {"input_shape": (8, 8), "hidden": (16,), "code_size": 8}, seed=0)
    p = train(model, digits.x_train[:200], TrainSettings(greedy=True, greedy_epochs=1, finetune=False))
    assert [r["phase"] for r in p.epoch_rows] == ["greedy layer 1/2", "greedy layer 2/2"]


def test_greedy_refused_for_models_without_layers(digits):
    with pytest.raises(ValueError, match="greedy"):
        train(create_model("pca", input_shape=(8, 8)), digits.x_train[:50], TrainSettings(greedy=True))


def test_stop_keeps_weights_trained_so_far(digits):
    model = build_model("stacked", {"input_shape": (8, 8)}, seed=0)
    init = _weights(model)
    stop = threading.Event()
    seen = []

    def callback(p):
        seen.append(p.step)
        if p.step >= 20:
            stop.set()

    p = train(model, digits.x_train, TrainSettings(epochs=50, batch_size=8), callback=callback, stop_event=stop)
    assert p.status == "stopped"
    assert 20 <= p.step < p.total_steps
    assert not torch.equal(init["encoder.layers.0.weight"], model.state_dict()["encoder.layers.0.weight"])


def test_exploding_loss_stops_with_message_and_last_good_weights(digits):
    model = build_model("stacked", {"input_shape": (8, 8)}, seed=0)
    orig = model.training_step
    calls = {"n": 0}

    def exploding(x, opts, ctx):
        calls["n"] += 1
        if calls["n"] == 80:  # blow the decoder up: finite, but the loss jumps by orders of magnitude
            with torch.no_grad():
                model.decoder.layers[-1].weight.mul_(1e7)
        return orig(x, opts, ctx)

    model.training_step = exploding
    p = train(model, digits.x_train, TrainSettings(epochs=20, batch_size=16))
    assert p.status == "diverged" and "learning rate" in p.message
    assert model.decoder.layers[-1].weight.abs().max() < 100  # the blown-up weights were rolled back
    assert p.step < p.total_steps


def test_nan_loss_restores_last_good_weights(digits):
    model = build_model("stacked", {"input_shape": (8, 8)}, seed=0)
    orig = model.training_step
    calls = {"n": 0}

    def poisoned(x, opts, ctx):
        calls["n"] += 1
        if calls["n"] >= 60:  # from here on the loss is NaN
            with torch.no_grad():
                model.encoder.layers[0].weight.fill_(float("nan"))
        return orig(x, opts, ctx)

    model.training_step = poisoned
    p = train(model, digits.x_train, TrainSettings(epochs=20, batch_size=16))
    assert p.status == "diverged" and "nan" in p.message.lower()
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())
    assert p.step < p.total_steps


def test_progress_publishes_terms_rate_eta_and_probe(digits):
    seen = []
    model = build_model("stacked", {"input_shape": (8, 8)}, seed=0)
    p = train(model, digits.x_train, TrainSettings(epochs=2), x_val=digits.x_test, probe=digits.x_test[:6],
              callback=lambda p: seen.append((p.step, p.probe is not None)))
    assert p.status == "finished" and p.step == p.total_steps == 2 * int(np.ceil(len(digits.x_train) / 32))
    assert seen and all(has_probe for _, has_probe in seen)
    assert p.probe.shape == (6, 64)
    assert {"train_reconstruction", "val_reconstruction"} <= set(p.epoch_rows[-1])
    assert p.samples_per_s > 0 and p.eta == 0.0
    assert [h["step"] for h in p.history] == sorted(h["step"] for h in p.history)


def test_device_is_picked_automatically():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        expected = "mps"
    assert pick_device().type == expected
    assert pick_device("cpu").type == "cpu"


def test_filter_snapshots_are_kept_per_epoch_and_thinned(digits):
    from aecore.training import MAX_SNAPSHOTS, _snapshot
    model = build_model("stacked", {"input_shape": (8, 8), "hidden": (12,), "code_size": 4}, seed=0)
    p = train(model, digits.x_train[:100], TrainSettings(epochs=3, batch_size=50))
    assert sorted(p.snapshots) == [0, 1, 2, 3]
    assert np.array_equal(p.snapshots[3], model.first_layer_weights().detach().half().numpy())
    assert not np.array_equal(p.snapshots[0], p.snapshots[3])  # the filters moved
    snaps: dict = {}
    for epoch in range(60):
        _snapshot(model, epoch, snaps)
    assert len(snaps) <= MAX_SNAPSHOTS and min(snaps) == 0 and max(snaps) == 59


def test_output_bias_starts_at_the_training_images_mean(digits):
    x = torch.as_tensor(digits.x_train[:400])
    mean = x.mean(0)
    stacked = build_model("stacked", {"input_shape": (8, 8)}, seed=0)
    assert start_output_bias(stacked, x)
    expected = torch.log(mean.clamp(1e-3, 1 - 1e-3) / (1 - mean.clamp(1e-3, 1 - 1e-3)))  # logit
    assert torch.allclose(stacked.decoder.layers[-1].bias, expected, atol=1e-5)
    assert float(stacked.decoder.layers[-1].bias.detach().min()) == pytest.approx(np.log(1e-3 / (1 - 1e-3)), abs=1e-4)
    linear = build_model("k-sparse", {"input_shape": (8, 8), "code_size": 32, "k": 4}, seed=0)  # squared-error output
    assert linear.output_kind == "linear" and start_output_bias(linear, x)
    assert torch.allclose(linear.decoder_bias, mean)
    conv = build_model("conv", {"input_shape": (8, 8), "channels": (4,), "code_size": 4}, seed=0)
    assert start_output_bias(conv, x)  # one grey channel: one value, the logit of the mean over all pixels
    p = float(mean.mean())
    assert float(conv.dec_convs[-1].bias.detach()) == pytest.approx(np.log(p / (1 - p)), rel=1e-5)
    assert not start_output_bias(create_model("pca", input_shape=(8, 8)), x)


def test_bias_from_data_is_what_training_starts_from_and_it_lowers_the_loss(digits):
    x = digits.x_train[:600]
    losses = {}
    for from_data in (True, False):
        model = build_model("stacked", {"input_shape": (8, 8)}, seed=0)
        p = train(model, x, TrainSettings(epochs=2, seed=0, output_bias_from_data=from_data))
        losses[from_data] = [r["train_reconstruction"] for r in p.epoch_rows]
    assert losses[True][0] < losses[False][0] and losses[True][1] < losses[False][1]
    # with it off, the loop leaves the bias alone: the first steps start from zero
    model = build_model("stacked", {"input_shape": (8, 8)}, seed=0)
    train(model, x, TrainSettings(epochs=1, seed=0, output_bias_from_data=False, lr=1e-5))
    assert float(model.decoder.layers[-1].bias.detach().abs().max()) < 1e-3


def _bce(model, x) -> float:
    with torch.no_grad():
        return float(model.eval()(torch.as_tensor(x)).losses["reconstruction"])


def test_a_collapsed_run_is_not_a_success_and_keeps_its_best_weights():
    """Before, lr 1 made every reconstruction the mean digit, the curve spiked to ~45,000, and the run 'finished'."""
    from aecore import load_dataset
    data = load_dataset("mnist-5k")
    model = build_model("stacked", {}, seed=0)
    p = train(model, data.x_train, TrainSettings(epochs=2, lr=1.0), probe=data.probe(10))
    assert p.status == "diverged" and "collapsed" in p.message and "nearly one image" in p.message
    # the very first steps spiked (45,000), so the weights kept are the start's, not the collapsed mean image's
    assert "weights of step 0" in p.message
    fresh = build_model("stacked", {}, seed=0)
    start_output_bias(fresh, torch.as_tensor(data.x_train))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values()))


def test_divergence_keeps_the_weights_of_the_lowest_loss(digits):
    """Before, a run climbing the loss (a negative learning rate) kept the weights one log point before the limit:
    BCE 10.83 against 0.264 at the start."""
    model = build_model("stacked", {"input_shape": (8, 8)}, seed=0)
    start = _bce(model, digits.x_test)
    p = train(model, digits.x_train, TrainSettings(epochs=200, lr=-0.01, batch_size=64))
    assert p.status == "diverged" and "lowest" in p.message
    assert _bce(model, digits.x_test) <= start * 1.05


def test_jobs_beyond_the_limit_queue_in_order_and_can_be_cancelled(digits, monkeypatch):
    from aecore import RunStore, TrainingJob, jobs
    monkeypatch.setattr(jobs, "SLOTS", jobs.JobSlots(1))
    store = RunStore()
    settings = TrainSettings(epochs=60, batch_size=16)  # the first trains for seconds while the others queue
    first, second, third = (TrainingJob("stacked", {"hidden": (8,), "code_size": 2}, digits, settings, store=store)
                            for _ in range(3))
    first.start()
    assert first.wait_for_progress(30) and first.progress().status == "running"
    second.start()
    third.start()
    for job, ahead in ((second, "next to start"), (third, "queued: 1 job ahead of this one")):
        while ahead not in job.progress().phase:  # published as soon as the job joins the queue
            assert job.join(0.05) is False
        assert job.progress().status == "pending" and job.model is None  # nothing built while it waits
    third.stop()
    assert third.join(30) and third.progress().status == "stopped" and "cancelled" in third.progress().message
    assert third.record is None
    assert first.join(120) and second.join(120)
    assert [j.progress().status for j in (first, second)] == ["finished", "finished"]
    assert {r.id for r in store.list()} == {first.run_id, second.run_id}


@pytest.mark.parametrize("name", ["vae", "stacked"])
def test_bfloat16_mixed_precision_learns_as_float32_does(digits, name, monkeypatch):
    """precision=bfloat16 runs each step under autocast (products in bfloat16, weights and losses in float32): the
    weights change every step (one autocast around all steps kept the first step's bfloat16 weight copies, and the
    VAE did not learn at all) and the loss falls as in float32. The stacked model leaves its tape-free step for
    autograd's casts."""
    from aecore.training import autocast_for, native_bf16
    x = digits.x_train[:512]
    seen = []
    finals = {}
    for precision in ("float32", "bfloat16"):
        model = build_model(name, {"input_shape": (8, 8)}, seed=3)
        step = model.training_step

        def spy(batch, optimizers, ctx, step=step):
            seen.append((precision, torch.is_autocast_enabled("cpu")))
            return step(batch, optimizers, ctx)
        model.training_step = spy
        first = {k: v.clone() for k, v in model.state_dict().items()}
        p = train(model, x, TrainSettings(epochs=6, batch_size=32, precision=precision, seed=3))
        assert p.status == "finished"
        assert any(not torch.equal(first[k], v) for k, v in model.state_dict().items())
        curve = [sum(v for k, v in h.items() if k in ("reconstruction", "kl")) for h in p.history]
        assert curve[-1] < 0.95 * curve[0], (precision, curve[0], curve[-1])
        finals[precision] = np.mean(curve[-3:])
    assert {p for p, on in seen if on} == {"bfloat16"} and any(p == "float32" for p, _ in seen)
    assert abs(finals["bfloat16"] - finals["float32"]) < 0.1 * finals["float32"], finals
    # auto means bfloat16 exactly where the hardware has it
    with autocast_for("auto", torch.device("cpu"))():
        assert torch.is_autocast_enabled("cpu") == native_bf16(torch.device("cpu"))
    with autocast_for("float32", torch.device("cpu"))():
        assert not torch.is_autocast_enabled("cpu")


def test_starting_a_job_hands_back_the_calling_threads_openmp_workers(digits, monkeypatch):
    """GNU OpenMP keeps worker threads for every thread that ran a parallel region; with more of them than cores,
    a job's worker thread waited ~0.2 ms on every parallel op. ``TrainingJob.start`` hands back the caller's."""
    import os
    from aecore import TrainingJob
    from aecore.jobs import _openmp, release_openmp_threads
    if _openmp() is None or not os.path.isdir("/proc/self/task"):
        pytest.skip("no OpenMP runtime with omp_pause_resource_all, or no /proc")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.relu(torch.randn(1000, 1000))  # a parallel region: this thread now has a team
        before = len(os.listdir("/proc/self/task"))
        assert release_openmp_threads()
        assert len(os.listdir("/proc/self/task")) < before  # its worker threads ended
    finally:
        torch.set_num_threads(threads)
    calls = []
    monkeypatch.setattr("aecore.jobs.release_openmp_threads", lambda: calls.append(1))
    job = TrainingJob("stacked", {}, digits, TrainSettings(epochs=1))
    job.start()
    assert calls == [1] and job.join(timeout=60)


def test_freed_blocks_are_reused_by_the_next_step_not_faulted_in_again(monkeypatch):
    """A step's gradients and casts are allocated afresh: with glibc's defaults their pages went back to the kernel
    and were faulted in again at every step (0.3 s of a VAE epoch). ``train`` asks glibc to keep them. Counted in
    a fresh interpreter, from glibc's starting thresholds."""
    import subprocess
    import sys

    from aecore import native
    from aecore.training import train
    if native.libc() is None:
        pytest.skip("not glibc")
    script = """if True:
        import resource, torch
        from aecore import native
        def faults_per_step():  # like a step: eight 1.25 MB gradients written, then all freed
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(20):
                grads = [torch.empty(400 * 784).fill_(1.0) for _ in range(8)]
                del grads
            return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20
        lib = native.libc()  # glibc's starting thresholds, fixed (it raises them as it goes, but not for every
        lib.mallopt(native.M_MMAP_THRESHOLD, 128 << 10)  # pattern of frees: the VAE's steps kept faulting)
        lib.mallopt(native.M_TRIM_THRESHOLD, 128 << 10)
        faults_per_step()
        default = faults_per_step()
        assert native.keep_freed_pages()
        faults_per_step()
        print(default, faults_per_step())
    """
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr
    default, kept = map(float, out.stdout.split())
    assert default > 1000 and kept < 10, (default, kept)  # 8 x 307 pages of 4 kB a step, then none
    calls = []
    monkeypatch.setattr("aecore.training.keep_freed_pages", lambda: calls.append(1))
    train(create_model("pca", input_shape=(4,), code_size=2), np.random.rand(20, 4).astype("float32"),
          TrainSettings(epochs=1))
    assert calls == [1]


def test_a_process_that_exits_while_a_job_trains_saves_the_run_as_stopped(tmp_path):
    """A server stopped (or a script that returns) while a job trains: the job is stopped at its next step and its
    run saved as stopped, and the process exits cleanly. Before, the interpreter exited under the worker and aborted
    (SIGABRT, exit status 134), and the run was lost."""
    import json
    import subprocess
    import sys
    script = f"""if True:
        from aecore import RunStore, TrainSettings, TrainingJob, load_dataset
        job = TrainingJob("stacked", {{}}, load_dataset("digits"), TrainSettings(epochs=100_000, batch_size=32),
                          store=RunStore({str(tmp_path)!r})).start()
        assert job.wait_for_progress(60)
        print(job.run_id, flush=True)
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=root)
    assert out.returncode == 0, out.stderr[-2000:]
    run_id = out.stdout.split()[-1]
    record = json.loads((tmp_path / run_id / "run.json").read_text())
    assert record["status"] == "stopped" and "stopped at step" in record["message"]
    assert (tmp_path / run_id / "model.safetensors").stat().st_size > 0


def test_a_process_that_exits_while_a_background_task_computes_ends_it_cleanly():
    """The same for a background task (the Generate page's digit classifier training, a projection): it ends at its
    next progress report and the process exits with status 0, where it aborted inside torch."""
    import subprocess
    import sys
    script = """if True:
        import threading, torch
        from aecore.jobs import BackgroundTask
        from aecore.scores import train_classifier
        from aecore import load_dataset
        started = threading.Event()
        def work(progress):
            return train_classifier(load_dataset("digits"), steps=1_000_000,
                                    progress=lambda f: (started.set(), progress(f)))
        task = BackgroundTask(work).start()
        assert started.wait(60)
        print("exiting", flush=True)
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=root)
    assert out.returncode == 0 and "exiting" in out.stdout, (out.returncode, out.stderr[-2000:])
    assert "Traceback" not in out.stderr


def test_a_background_task_s_time_left_is_its_elapsed_time_at_the_pace_so_far():
    """Few labels and the digit classifier showed a bare percentage for up to a minute."""
    import threading
    import time as clock
    from aecore.jobs import BackgroundTask
    go, finish, reported = threading.Event(), threading.Event(), threading.Event()

    def work(progress):
        progress(0.01)
        reported.set()
        go.wait(30)
        progress(0.25)
        finish.wait(30)
        return "done"

    task = BackgroundTask(work)
    assert task.seconds_left() is None  # not started
    task.start()
    assert reported.wait(30)
    assert task.seconds_left() is None  # under 2 % done: no guess yet
    task._started = clock.perf_counter() - 10.0  # as if started 10 s ago
    go.set()
    while task.fraction < 0.25:
        clock.sleep(0.01)
    assert task.seconds_left() == pytest.approx(30.0, abs=0.5)  # a quarter in 10 s: three quarters in 30 s
    finish.set()
    assert task.join(30) and task.result == "done" and task.seconds_left() is None


def test_step_bytes_is_what_the_forward_pass_returns_extrapolated_and_leaves_the_generators_alone():
    from aecore.training import step_bytes
    model = torch.nn.Sequential(torch.nn.Linear(10, 7))
    assert step_bytes(model, torch.rand(4, 10), 1000) == 1000 * 7 * 4  # one float32 output of 7 a row
    vae = create_model("vae", input_shape=(8, 8), hidden=(16,), latent_size=2).train()  # draws noise in forward
    x = torch.rand(4, 64)
    state = torch.get_rng_state()
    assert step_bytes(vae, x, 64) > 0
    assert torch.equal(torch.get_rng_state(), state) and vae.training


@pytest.mark.parametrize("value, gb", [("", 4), ("1.5", 1.5), ("abc", 4), ("-2", 4), ("nan", 4), ("inf", 4)])
def test_the_step_memory_limit_is_read_from_the_environment(monkeypatch, value, gb):
    from aecore.training import _step_limit
    monkeypatch.setenv("AECORE_MAX_STEP_GB", value)
    assert _step_limit() == int(gb * 2**30)


def test_a_step_too_big_for_memory_is_refused_before_training_with_the_batch_size_that_fits(monkeypatch, digits,
                                                                                              tmp_path):
    """The weight cap does not bound what a step holds (a conv model of channels (256, 256) took 3.0 GB at batch
    1024); the job fails at once with the reason and the batch size that fits, and saves nothing."""
    from aecore import ConfigError, RunStore, TrainingJob, training
    from aecore.training import step_bytes
    model = create_model("stacked", input_shape=digits.image_shape)
    x = torch.as_tensor(digits.x_train)
    limit = step_bytes(model, x[:4], 300)
    monkeypatch.setattr(training, "MAX_STEP_BYTES", limit)
    with pytest.raises(ConfigError, match=r"batch size 512 needs .* use a batch size of at most (29[89]|30[01])\b"):
        train(model, digits.x_train, TrainSettings(epochs=1, batch_size=512))
    assert train(model, digits.x_train, TrainSettings(epochs=1, batch_size=256)).status == "finished"
    store = RunStore(tmp_path)
    job = TrainingJob("stacked", {}, digits, TrainSettings(epochs=1, batch_size=1024), store=store).start()
    assert job.join(60)
    p = job.progress()
    assert p.status == "failed" and "a job may take" in p.message and p.step == 0
    assert job.record is None and store.list() == []
