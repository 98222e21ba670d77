"""The command line: list, train (saves a run and prints its id), eval (one JSON line)."""
import json

import numpy as np

import pytest
import torch

from aecore.__main__ import main
from aecore.store import RunStore


def test_train_then_eval_then_list(capsys):
    assert main(["train", "stacked", "--dataset", "digits", "--epochs", "2", "--batch-size", "64",
                 "--set", "hidden=24", "--set", "code_size=6"]) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    model, record = RunStore().load(run_id)
    assert record.config["hidden"] == [24] and record.config["code_size"] == 6 and record.dataset == "digits"
    assert len(record.epochs) == 2 and record.settings["batch_size"] == 64
    assert record.settings["output_bias_from_data"] is True

    assert main(["eval", run_id]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["run"] == run_id and line["n"] == 359
    assert 0 < line["test_mse"] < line["test_bce"] < 1
    assert line["test_sse_per_image"] == pytest.approx(line["test_mse"] * 64, rel=1e-5)

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert run_id in out and "stacked" in out and "mnist-5k" in out


def test_train_into_a_log_writes_a_line_an_epoch(monkeypatch, capsys):
    """Into a log or a pipe (here pytest's capture) the progress is one line an epoch: the live bar, redrawn at
    every look at the job, wrote a copy of itself each time (hundreds over a short run, looked at every 5 ms)."""
    import aecore.__main__ as cli
    monkeypatch.setattr(cli, "POLL_S", 0.005)
    assert main(["train", "stacked", "--dataset", "digits", "--epochs", "3", "--batch-size", "8"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if " epoch " in line]
    epochs = [int(line.split(" epoch ")[1].split("/")[0]) for line in lines]
    assert epochs == sorted(set(epochs)) and 1 <= len(epochs) <= 3 and lines[0].startswith("training epoch 1/3")
    assert all("reconstruction" in line for line in lines) and "\r" not in err, err


def test_zero_output_bias_starts_the_bias_at_zero(capsys):
    assert main(["train", "stacked", "--dataset", "digits", "--epochs", "1", "--lr", "1e-5", "--zero-output-bias"]) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    model, record = RunStore().load(run_id)
    assert record.settings["output_bias_from_data"] is False
    assert float(model.output_bias().detach().abs().max()) < 1e-3  # a pixel that is always 0 would start at -6.9


def test_a_setting_the_family_ignores_is_named_as_ignored(capsys):
    assert main(["train", "neural-sparse-coding", "--dataset", "digits", "--epochs", "1", "--lr", "0.5"]) == 0
    assert "note: --lr is ignored, not for this model: its update rule has its own step size, eta" in \
        capsys.readouterr().err  # taken without a word before
    assert main(["train", "stacked", "--dataset", "digits", "--epochs", "1", "--lr", "0.01"]) == 0
    assert "ignored" not in capsys.readouterr().err


def test_too_few_steps_for_a_gan_are_said_with_the_epochs_that_give_enough(capsys):
    assert main(["train", "vae", "--dataset", "digits", "--epochs", "2", "--set", "hidden=16",
                 "--set", "latent_size=2"]) == 0
    err = capsys.readouterr().err
    assert "note: 2 epochs of 1,438 training images are 24 steps; a vae shows what it learns after about 4,500 " \
           "(--epochs 375)" in err
    run_id = RunStore().list()[0].record.id
    assert RunStore().record(run_id).settings["epochs"] == 2  # what was asked is what trains
    assert main(["train", "stacked", "--dataset", "digits", "--epochs", "1"]) == 0
    assert "steps" not in capsys.readouterr().err


def test_train_with_preset_and_greedy(capsys):
    assert main(["train", "tied", "--dataset", "digits", "--epochs", "1", "--greedy", "--greedy-epochs", "1"]) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    phases = [e["phase"] for e in RunStore().record(run_id).epochs]
    assert phases[0].startswith("greedy layer 1") and phases[-1] == "fine-tuning"


@pytest.mark.parametrize("argv,message", [
    (["train", "nope", "--dataset", "digits"], "valid models"),
    (["train", "stacked", "--dataset", "digits", "--set", "code_size=-1"], "code_size"),
    (["train", "stacked", "--dataset", "digits", "--set", "code_size"], "key=value"),
    (["train", "contractive", "--dataset", "digits", "--set", "tied=maybe"], "tied: cannot read 'maybe' as bool"),
    (["train", "stacked", "--dataset", "nowhere"], "valid datasets"),
    (["eval", "missing-run"], "no run"),
    (["train", "sparse-kl", "--dataset", "digits", "--greedy"], "does not support greedy"),
])
def test_bad_input_is_a_message_not_a_traceback(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_eval_reports_psnr_on_noisy_inputs(capsys):
    assert main(["train", "denoising", "--dataset", "digits", "--epochs", "2", "--set", "noise=masking"]) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["eval", run_id, "--noise", "masking", "--noise-level", "0.5"]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["model"] == "denoising" and line["noise"] == "masking"
    assert line["psnr_output"] > line["psnr_noisy_input"] > 0
    assert main(["eval", run_id, "--noise", "masking"]) == 2
    assert "--noise-level" in capsys.readouterr().err


def test_probe_runs_the_few_label_experiment_on_digits(capsys):
    assert main(["train", "stacked", "--dataset", "digits", "--epochs", "5", "--set", "hidden=32",
                 "--set", "code_size=16"]) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["probe", run_id, "--labels-per-class", "2,all", "--seeds", "2", "--steps", "60"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = out["rows"]
    assert len(rows) == 4 * 2 * 2  # methods x label counts x seeds
    assert {r["method"] for r in rows} == {"scratch", "frozen codes + logistic", "fine-tuned encoder",
                                          "PCA codes + logistic"}
    assert {r["n"] for r in rows if r["labels_per_class"] == 2} == {20}
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows)
    mean = lambda m, k: np.mean([r["accuracy"] for r in rows if r["method"] == m and r["labels_per_class"] == k])  # noqa: E731
    assert mean("frozen codes + logistic", "all") > 0.75  # chance is 0.1; 16-d codes after 5 epochs score ~0.8
    assert mean("frozen codes + logistic", "all") > mean("frozen codes + logistic", 2)
    assert main(["probe", run_id, "--labels-per-class", "0"]) == 2
    assert "positive whole numbers" in capsys.readouterr().err
    for bad in (["--seeds", "0"], ["--seeds", "6"], ["--steps", "-5"], ["--steps", "0"], ["--steps", "100001"]):
        capsys.readouterr()
        assert main(["probe", run_id, "--labels-per-class", "1", *bad]) == 2, bad
        err = capsys.readouterr().err.strip()
        assert bad[0] in err and "\n" not in err and "Traceback" not in err, (bad, err)


def test_a_run_is_refused_data_of_another_kind_before_the_data_loads(tmp_path, capsys, monkeypatch):
    """``eval IMAGE_RUN --dataset ptb`` (and ``train stacked``, ``paper``, ``prepare-talk`` with it) downloaded (or
    failed to download) PTB before saying that an image model cannot read text; and a probe of a one-class dataset (a folder of pictures without labels) has nothing to
    classify."""
    import aecore.__main__ as cli
    assert main(["train", "pca", "--dataset", "mnist-5k", "--set", "code_size=4"]) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    loads = []
    load = cli.load_dataset
    monkeypatch.setattr(cli, "load_dataset", lambda name: loads.append(name) or load(name))
    assert main(["eval", run_id, "--dataset", "ptb"]) == 2
    assert "works on image, not text" in capsys.readouterr().err and loads == []
    for command, message in ((["train", "stacked", "--dataset", "ptb"], "stacked works on image; ptb is text"),
                             (["paper", "hinton", "--dataset", "ptb"], "a labelled image dataset; ptb is not"),
                             (["prepare-talk", "--dataset", "ptb"], "image presets; ptb is text")):
        assert main(command) == 2
        assert message in capsys.readouterr().err and loads == [], command
    one_class = tmp_path / "mine.npz"
    np.savez(one_class, x=np.random.default_rng(0).random((60, 28, 28)))  # no labels: one class, "unlabelled"
    assert main(["probe", run_id, "--dataset", str(one_class), "--labels-per-class", "1"]) == 2
    err = capsys.readouterr().err
    assert "one class" in err and "Traceback" not in err


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "epochs must be at least 1"), (["--epochs", "-3"], "epochs must be at least 1"),
    (["--epochs", str(10**11)], "epochs must be at most 500"), (["--batch-size", "-1"], "batch_size"),
    (["--batch-size", "0"], "batch_size"), (["--batch-size", "100000"], "batch_size must be at most 4,096"),
    (["--lr", "0"], "lr must be at least"), (["--lr", "-0.01"], "lr must be at least"),
    (["--seed", "-1"], "seed must be at least 0"), (["--seed", "99999999999999999999"], "seed must be at most"),
    (["--greedy-epochs", "0"], "greedy_epochs"), (["--set", "rho=nan"], "rho must be a finite number"),
    (["--device", "foo"], "unknown device"), (["--device", "cuda:0" if not torch.cuda.is_available() else "mps:9"],
                                              "not available"),
])
def test_cli_refuses_bad_training_settings_before_anything_runs(args, message, capsys):
    assert main(["train", "sparse-kl", "--dataset", "digits", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not RunStore().list()


@pytest.mark.parametrize("command", [["sample", "RUN", "--out", "OUT"], ["eval", "RUN", "--samples", "10"],
                                     ["interpolate", "RUN", "a b", "b a"]])
def test_every_command_takes_the_seeds_training_takes(command, tmp_path, capsys):
    """A seed is a seed wherever it is given: -1 or 10^20 is refused as `train` refuses it, in one line, before
    anything loads (``sample`` took -1 and drew from it)."""
    cmd = [{"RUN": "no-such-run", "OUT": str(tmp_path / "s.npy")}.get(a, a) for a in command]
    for seed, message in (("-1", "seed must be at least 0, got -1"),
                          ("99999999999999999999", "seed must be at most 2,147,483,647")):
        assert main([*cmd, "--seed", seed]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "s.npy").exists()


@pytest.mark.parametrize("flags, message", [
    (["--samples", "-1"], "--samples must be between 2 and 10,000"), (["--samples", "0"], "--samples must be"),
    (["--samples", str(10**9)], "--samples must be between"), (["--iw-samples", "0"], "--iw-samples must be"),
    (["--noise", "masking"], "--noise needs --noise-level"),
    (["--noise", "gaussian", "--noise-level", "2"], "--noise needs --noise-level between 0 and 1")])
def test_eval_refuses_bad_flags_before_the_run_loads(flags, message, capsys, monkeypatch):
    """``eval VAE_RUN --samples -1`` computed the 21-s importance-weighted NLL before refusing the flag;
    ``--samples 10**9`` would have drawn 10^9 samples at once."""
    import aecore.__main__ as cli
    monkeypatch.setattr(cli, "_run_and_dataset", lambda *a, **k: pytest.fail("the run was loaded"))
    assert main(["eval", "any-run", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_run_ids_are_confined_to_the_store_and_runs_named_by_their_folder(tmp_path, capsys):
    outside = RunStore(tmp_path / "elsewhere")
    assert main(["--runs-dir", str(outside.root), "train", "pca", "--dataset", "digits", "--set", "code_size=4"]) == 0
    run = capsys.readouterr().out.strip().splitlines()[-1]
    for bad in (f"../elsewhere/{run}", str(outside.root / run), "x" * 5000):
        for command in (["eval", bad], ["sample", bad, "--out", str(tmp_path / "s.npy")]):
            assert main(command) == 2
            err = capsys.readouterr().err
            assert "bad run id" in err and len(err) < 300, err
    meta = outside.root / run / "run.json"
    meta.write_text(meta.read_text().replace(f'"id": "{run}"', '"id": "../../etc"'))
    assert [r.record.id for r in outside.list()] == [run] and outside.record(run).id == run


@pytest.mark.parametrize("signame,times", [("SIGINT", 1), ("SIGTERM", 1), ("SIGTERM", 2)])
def test_ctrl_c_or_kill_stops_training_cleanly_and_saves_the_run(tmp_path, signame, times):
    """Ctrl-C (SIGINT), or `kill`/`timeout` (SIGTERM, which `timeout` sends twice: to the command, then to its
    group): the run is saved as stopped and its id printed. Before, an interrupted Thread.join let the process exit
    under the training thread (SIGABRT, no run), SIGTERM killed it outright (no run), and a second signal during
    the save ended the command with "interrupted" instead of the id."""
    import os
    import signal
    import subprocess
    import sys
    env = dict(os.environ, AECORE_RUNS_DIR=str(tmp_path / "runs"), PYTHONUNBUFFERED="1")  # progress as it comes
    p = subprocess.Popen([sys.executable, "-m", "aecore", "train", "stacked", "--dataset", "digits", "--epochs", "500"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         # a suite started in the background (`.ci/run &`) ignores SIGINT, and a child that inherits
                         # that never sees Ctrl-C: it trained all 500 epochs
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = b""
    while b"/500" not in seen and p.poll() is None:  # training is under way ("epoch N/500 ...")
        seen += p.stderr.read1(4096)
    assert p.poll() is None, f"training ended before it was interrupted: {seen[-300:]!r}"
    p.send_signal(getattr(signal, signame))
    if times == 2:  # the second once the first is being handled: it lands in the save or in the exit
        while b"stopping" not in seen and p.poll() is None:
            seen += p.stderr.read1(4096)
        p.send_signal(getattr(signal, signame))
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err.decode()[-500:]
    run = out.decode().strip().splitlines()[-1]
    record = RunStore(tmp_path / "runs").record(run)
    assert record.status == "stopped" and 0 < len(record.epochs) < 500, (record.status, len(record.epochs),
                                                                         seen[-300:], err[-300:])


def test_output_into_a_closed_pipe_stops_quietly(tmp_path):
    """`python -m aecore list | head` printed a BrokenPipeError traceback once head had gone."""
    import os
    import subprocess
    import sys
    read, write = os.pipe()
    os.close(read)  # the reader has gone before the first line: every write fails with EPIPE
    env = dict(os.environ, AECORE_RUNS_DIR=str(tmp_path / "runs"))
    p = subprocess.run([sys.executable, "-m", "aecore", "list"], stdout=write, stderr=subprocess.PIPE, env=env,
                       timeout=120)
    os.close(write)
    assert p.returncode == 1 and p.stderr == b"", p.stderr.decode()[-500:]


def test_a_step_too_big_for_memory_is_a_one_line_refusal_with_status_2(monkeypatch, capsys):
    from aecore import training
    monkeypatch.setattr(training, "MAX_STEP_BYTES", 1000)  # less than any step of the seed recipe
    assert main(["train", "stacked", "--dataset", "digits", "--epochs", "1", "--batch-size", "64"]) == 2
    err = capsys.readouterr().err.strip()
    assert "a job may take" in err and "Traceback" not in err and len(err.splitlines()) == 1, err
