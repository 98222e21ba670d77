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


def test_list_and_delete(tmp_path):
    store = RunStore(tmp_path)
    _save(store, run_id="a")
    _save(store, run_id="b")
    assert {r.id for r in store.list()} == {"a", "b"}
    store.delete("a")
    assert [r.id for r in store.list()] == ["b"]
    with pytest.raises(RunStoreError):
        store.delete("a")


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
