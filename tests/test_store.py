"""The run store: round trip, listing, deletion and damaged runs."""
import json

import pytest
import torch

from aecore import RunRecord, RunStore, RunStoreError, build_model
from aecore.config import config_to_dict
from aecore.registry import make_config


def _save(store, name="tied", run_id="r1", **config):
    model = build_model(name, {"input_shape": (8, 8), **config}, seed=0)
    rec = RunRecord(id=run_id, model=name, config=config_to_dict(make_config(name, input_shape=(8, 8), **config)),
                    dataset="digits", seed=0, history=[{"step": 1, "reconstruction": 0.5}], metrics={"bce": 0.3})
    store.save(rec, model)
    return model, rec


@pytest.mark.parametrize("name", ["stacked", "tied", "pca"])
def test_round_trip_is_bit_equal(tmp_path, name):
    store = RunStore(tmp_path)
    model, rec = _save(store, name, code_size=7)
    loaded, rec2 = store.load("r1")
    assert type(loaded) is type(model) and rec2.config == rec.config and rec2.history == rec.history
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    x = torch.rand(3, 64)
    assert torch.equal(model.reconstruct(x), loaded.reconstruct(x))


def test_a_run_saved_before_a_field_existed_loads_as_it_was_trained(tmp_path):
    """A run is saved with every config field, so one that lacks a field predates it, and takes the field's
    ``before`` value: a GAN from before PacGAN packs and spectral norm loads with pack 1 (its D takes 1 channel) and
    batch norm in D, where new GANs default to 4 and spectral norm (and no feature matching, new ones 0.03); a k-sparse
    run from before k's schedule has none (k_start 1)."""
    store = RunStore(tmp_path)
    model, rec = _save(store, "gan", run_id="old", width=8, pack=1, d_norm="batch", feature_matching=0.0)
    meta = tmp_path / "old" / "run.json"
    saved = json.loads(meta.read_text())
    del saved["config"]["pack"], saved["config"]["d_norm"], saved["config"]["feature_matching"]
    meta.write_text(json.dumps(saved))
    loaded, record = store.load("old")
    assert record.config["pack"] == 1 and loaded.discriminator.net[0].in_channels == 1
    assert record.config["d_norm"] == "batch" and isinstance(loaded.discriminator.net[3], torch.nn.BatchNorm2d)
    assert torch.equal(loaded.discriminator.net[0].weight, model.discriminator.net[0].weight)
    new = make_config("gan", input_shape=(8, 8))  # what a new run gets
    assert record.config["feature_matching"] == 0.0
    assert new.pack == 4 and new.d_norm == "spectral" and new.feature_matching == 0.03
    _save(store, "k-sparse", run_id="ks", code_size=16, k=4)
    meta = tmp_path / "ks" / "run.json"
    saved = json.loads(meta.read_text())
    del saved["config"]["k_start"]
    meta.write_text(json.dumps(saved))
    assert store.load("ks")[1].config["k_start"] == 1 and store.load("ks")[0].scheduled_k(0, 100) == 4


def test_list_and_delete(tmp_path):
    store = RunStore(tmp_path)
    _save(store, run_id="a")
    _save(store, run_id="b")
    assert {r.id for r in store.list()} == {"a", "b"}
    store.delete("a")
    assert [r.id for r in store.list()] == ["b"]
    with pytest.raises(RunStoreError):
        store.delete("a")


def test_a_run_json_is_parsed_again_only_when_it_changes(tmp_path, monkeypatch):
    """Every page's sidebar lists the runs at every rerun, and each listing parsed every run.json again. A summary
    (the record less its history and epoch rows, which a 730 KB run.json holds 2.1 MB of) is now kept until the
    file changes: a rename (a new file renamed in), or a write in place that moves its time. A whole record is
    always read afresh."""
    import os
    import time

    from aecore import store as store_module
    store = RunStore(tmp_path)
    _save(store, run_id="a")
    _save(store, run_id="b")
    old = time.time() - 60
    for rid in ("a", "b"):  # files written just now are not kept: the change time's clock ticks coarsely
        os.utime(tmp_path / rid / "run.json", (old, old))
    parsed = []
    real = store_module._parse_record
    monkeypatch.setattr(store_module, "_parse_record", lambda source, data: (parsed.append(source), real(source,
                                                                                                         data))[1])
    assert [r.record.metrics for r in store.list()] == [{"bce": 0.3}] * 2 and sorted(parsed) == ["a", "b"]
    assert len(store.list()) == 2 and store.summary("a").model == "tied" and len(parsed) == 2  # nothing parsed
    assert all(r.record.history == [] for r in store.list())  # summaries
    assert store.record("a").history == [{"step": 1, "reconstruction": 0.5}] and len(parsed) == 3  # whole, afresh
    store.list()[0].record.name = "changed by a caller"
    assert all(r.record.name == "" for r in store.list())  # callers get copies
    store.rename("a", "mine")
    assert store.summary("a").name == "mine" and store.record("a").history  # the rename kept the history
    path = tmp_path / "b" / "run.json"
    path.write_text(path.read_text().replace('"bce": 0.3', '"bce": 0.4'))  # in place, the same size
    os.utime(path, (old + 5, old + 5))
    assert store.summary("b").metrics == {"bce": 0.4}
    store.delete("b")
    store.list()
    assert str(tmp_path / "b") not in store_module._SUMMARIES


def test_a_rename_and_new_scores_at_the_same_moment_both_stay(tmp_path, monkeypatch):
    """Renaming a run (the library) and adding its scores (the Generate page) each read the record, change it and
    write it back; in two sessions at once, the later write dropped the other's change."""
    import threading
    import time
    store = RunStore(tmp_path)
    _save(store, run_id="a")
    read, real = threading.Event(), RunStore.record

    def slow_first_read(self, run_id):
        record = real(self, run_id)
        if threading.current_thread().name == "scores" and not read.is_set():
            read.set()
            time.sleep(0.3)  # the rename comes in between the scores' read and their write
        return record
    monkeypatch.setattr(RunStore, "record", slow_first_read)
    scores = threading.Thread(target=store.add_metrics, args=("a", {"classifier_frechet": 40.0}), name="scores")
    scores.start()
    read.wait()
    store.rename("a", "mine")
    scores.join()
    record = real(store, "a")
    assert record.name == "mine" and record.metrics["classifier_frechet"] == 40.0


def test_damaged_run_is_reported_and_others_still_load(tmp_path):
    store = RunStore(tmp_path)
    _save(store, run_id="good")
    _save(store, run_id="bad-json")
    _save(store, run_id="bad-weights")
    (tmp_path / "bad-json" / "run.json").write_text("{not json")
    (tmp_path / "bad-weights" / "model.safetensors").write_bytes(b"\x00" * 10)
    listing = {r.id: r for r in store.list()}
    assert listing["good"].record is not None
    assert listing["bad-json"].record is None and "damaged" in listing["bad-json"].error
    with pytest.raises(RunStoreError, match="damaged"):
        store.load("bad-weights")
    store.load("good")


def test_unknown_model_in_record_is_a_clear_error(tmp_path):
    store = RunStore(tmp_path)
    _save(store, run_id="x")
    meta = json.loads((tmp_path / "x" / "run.json").read_text())
    meta["model"] = "gone"
    (tmp_path / "x" / "run.json").write_text(json.dumps(meta))
    with pytest.raises(RunStoreError, match="cannot rebuild"):
        store.load("x")


def _rewrite(store, run_id, **fields):
    meta = store.root / run_id / "run.json"
    data = json.loads(meta.read_text())
    data.update(fields)
    meta.write_text(json.dumps(data))


@pytest.mark.parametrize("damage", [
    {"created": None}, {"created": "yesterday"}, {"metrics": None}, {"metrics": {"bce": "x"}}, {"config": None},
    {"config": [1, 2]}, {"history": "long"}, {"seed": "zero"}, "run.json is a folder", "deeply nested"])
def test_one_bad_run_folder_is_listed_as_damaged_and_breaks_nothing(tmp_path, damage):
    store = RunStore(tmp_path)
    _save(store, run_id="good")
    _save(store, run_id="bad")
    meta = store.root / "bad" / "run.json"
    if damage == "run.json is a folder":
        meta.unlink()
        meta.mkdir()
    elif damage == "deeply nested":
        meta.write_text("[" * 100_000 + "]" * 100_000)
    else:
        _rewrite(store, "bad", **damage)
    listing = {r.id: r for r in store.list()}
    assert listing["good"].record is not None and listing["bad"].record is None and listing["bad"].error
    for read in (store.record, store.load):
        with pytest.raises(RunStoreError):
            read("bad")
    assert listing["good"].record.label  # what the sidebar shows still formats


@pytest.mark.parametrize("shape, reason", [([-1, 28], "at least 1"), ([100000, 100000], "pixels")])
def test_absurd_shapes_are_refused_before_anything_is_allocated(tmp_path, shape, reason):
    store = RunStore(tmp_path)
    _save(store, run_id="r")
    config = json.loads((store.root / "r" / "run.json").read_text())["config"]
    _rewrite(store, "r", config={**config, "input_shape": shape})
    with pytest.raises(RunStoreError, match=reason):
        store.load("r")


def test_damaged_snapshot_keys_are_skipped(tmp_path):
    from safetensors.torch import save_file
    store = RunStore(tmp_path)
    _save(store, run_id="r")
    save_file({"epoch_x": torch.zeros(2), "epoch_3": torch.ones(2)}, str(store.root / "r" / "snapshots.safetensors"))
    assert list(store.snapshots("r")) == [3]


def test_a_failed_save_leaves_nothing_behind_and_the_job_says_so(tmp_path, digits, monkeypatch):
    from aecore import TrainSettings, TrainingJob
    store = RunStore(tmp_path / "runs")
    real = type(tmp_path).write_bytes

    def disk_full(path, data):
        if path.name == "model.safetensors":
            raise OSError(28, "No space left on device")
        return real(path, data)
    monkeypatch.setattr(type(tmp_path), "write_bytes", disk_full)
    job = TrainingJob("pca", {"code_size": 4}, digits, TrainSettings(epochs=1), store=store).start()
    assert job.join(60)
    p = job.progress()
    assert p.status == "failed" and "could not be saved" in p.message and "No space left" in p.message
    assert job.record is None and store.list() == [] and not any(store.root.iterdir())  # no .tmp folder either


def test_a_job_is_done_only_once_its_run_is_saved(tmp_path, digits):
    from aecore import TrainSettings, TrainingJob
    store = RunStore(tmp_path)
    seen = []
    job = TrainingJob("stacked", {"hidden": (8,), "code_size": 2}, digits, TrainSettings(epochs=2), store=store)
    publish = job._publish

    def watch(p):
        if p.done:  # the moment a poller could first see the job as done
            seen.append(job.record is not None and (store.root / job.run_id / "model.safetensors").exists())
        publish(p)
    job._publish = watch
    assert job.start().join(60)
    assert seen == [True]


def test_what_a_save_killed_mid_write_left_is_removed_once_no_writer_can_be_left(tmp_path):
    """Issue 17: the `.ID.tmp` folders of saves killed mid-write (kill -9: no handler runs) were never cleaned up
    (4 of 18 trials, one of 11 MB). The listing removes them once they are older than any save takes, and leaves a
    younger one (a save in progress in another process) alone."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from aecore.data import STALE_AFTER
    script = f"""
import os, signal
from pathlib import Path
import test_store
from aecore import RunStore
real = Path.write_bytes
def killed(path, data):
    real(path, data[: len(data) // 2])
    os.kill(os.getpid(), signal.SIGKILL)  # mid-write, as kill -9 or a power cut would
Path.write_bytes = killed
test_store._save(RunStore({str(tmp_path)!r}), run_id="killed")
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=os.path.dirname(__file__),
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    left = tmp_path / ".killed.tmp"
    assert left.is_dir() and any(left.iterdir())  # what the killed save left
    store = RunStore(tmp_path)
    _save(store, run_id="kept")
    (tmp_path / ".writing.tmp").mkdir()  # another process's save, under way
    assert [r.id for r in store.list()] == ["kept"] and left.exists()  # not listed; too young to be known dead
    old = time.time() - STALE_AFTER - 60
    os.utime(left, (old, old))
    assert [r.id for r in store.list()] == ["kept"]
    assert not left.exists() and (tmp_path / ".writing.tmp").is_dir() and store.load("kept")
