"""Recipes (share links, exported scripts, talk presets), run names, and a user's own images as a dataset."""
import dataclasses
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from aecore import ConfigError, DatasetError, RunStore, RunStoreError, TrainSettings, TrainingJob, load_dataset
from aecore import images as user_images
from aecore.data import dataset_info, list_datasets
from aecore.recipe import Recipe
from aecore.talk import TALK_PRESETS, prepare_talk

ROOT = Path(__file__).resolve().parents[1]


def _train(digits, model="stacked", epochs=2, seed=3, **config):
    job = TrainingJob(model, config, digits, TrainSettings(epochs=epochs, seed=seed, batch_size=64), store=RunStore())
    job.start().join()
    return job


def test_a_recipe_keeps_only_what_differs_and_round_trips(digits):
    job = _train(digits, hidden=(24,), code_size=6)
    recipe = Recipe.of_record(job.record)
    assert recipe == Recipe("stacked", "digits", {"hidden": [24], "code_size": 6},
                            {"epochs": 2, "seed": 3, "batch_size": 64})
    assert Recipe.from_json(recipe.to_json()) == recipe and recipe.matches(job.record)
    assert not Recipe.make("stacked", "digits", {"code_size": 7}, recipe.settings).matches(job.record)
    # a link holds every value: one with the non-defaults only trained another model once a default changed
    link = json.loads(recipe.to_json())
    assert link["config"] == {"hidden": [24], "code_size": 6, "activation": "gelu", "code_activation": "gelu"}
    assert link["settings"] == {**dataclasses.asdict(TrainSettings()), "epochs": 2, "seed": 3, "batch_size": 64}


@pytest.mark.parametrize("text, why", [
    ("not json", "not valid JSON"), ("[1, 2]", "an object"), ('{"model": "nope", "dataset": "d"}', "unknown model"),
    ('{"model": "stacked", "dataset": "d", "settings": {"lr": NaN}}', "finite"),
    ('{"model": "stacked", "dataset": "d", "settings": {"epochs": 1e12}}', "at most"),
    ('{"model": "stacked", "dataset": "d", "config": {"code_size": -1}}', "at least"),
    ('{"model": "stacked", "dataset": "d", "config": {"__class__": 1}}', "unknown setting"),
    ('{"model": "stacked", "dataset": "d", "config": {"hidden": [100000, 100000, 100000]}}', "at most"),
    ('{"model": "stacked", "dataset": "d", "config": {"hidden": [' + ", ".join(["4096"] * 20) + ']}}', "weights"),
    ("[" * 100_000, "at most 2000"),
    ('{"model": "stacked", "dataset": "d", "config": ' + "[" * 950 + "]" * 950 + "}", "settings objects|not valid"),
])
def test_hostile_recipes_are_refused_with_a_reason(text, why):
    with pytest.raises(ConfigError, match=why):
        Recipe.from_json(text)


def test_the_exported_script_reproduces_the_run(digits, tmp_path):
    job = _train(digits, epochs=2, hidden=(16,), code_size=5)
    script = tmp_path / "again.py"
    script.write_text(Recipe.of_record(job.record).script(job.record.metrics, job.run_id))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AECORE_RUNS_DIR": str(tmp_path / "other-runs")}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    rerun = [e.record for e in RunStore(tmp_path / "other-runs").list()]
    assert len(rerun) == 1 and rerun[0].id in out.stdout
    for key, value in job.record.metrics.items():  # same seed, same numbers (up to float rounding across threads)
        assert rerun[0].metrics[key] == pytest.approx(value, rel=1e-4), key
    assert Recipe.of_record(rerun[0]) == Recipe.of_record(job.record)


def test_rename_shows_the_name_keeps_the_id_and_refuses_bad_names(digits):
    job = _train(digits, epochs=1, hidden=(16,), code_size=5)
    store = RunStore()
    before = store.record(job.run_id)
    assert before.title.startswith("stacked hidden=16, code_size=5 · digits")
    assert "test BCE" in before.label
    killed = store.root / job.run_id / ".run.json.dead.tmp"  # a rename killed mid-write (kill -9) left it
    killed.write_text("{")
    os.utime(killed, (1e9, 1e9))
    store.rename(job.run_id, "  my   first run ")
    assert not killed.exists()
    after = store.record(job.run_id)
    assert after.id == job.run_id and after.name == "my first run" and after.label.startswith("my first run ·")
    for bad in ("x" * 81, "nul\x00", "bell\x07"):
        with pytest.raises(RunStoreError):
            store.rename(job.run_id, bad)
    assert store.record(job.run_id).name == "my first run"
    assert not list((store.root / job.run_id).glob(".*tmp"))
    blob = store.export(job.run_id)  # the name travels with the run
    other = RunStore(store.root.parent / "other")
    assert other.record(other.import_(blob)).name == "my first run"


# --- your own images ------------------------------------------------------------------------------------------------
def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _bars(n_per_class: int = 12) -> dict[str, bytes]:
    """Dark bars on a light ground, 40x30 RGB: vertical ones in 'tall/', horizontal ones in 'wide/'."""
    files = {}
    for i in range(n_per_class):
        a = np.full((40, 30, 3), 240, np.uint8)
        a[5:35, 10 + i % 5:14 + i % 5] = 10
        files[f"shapes/tall/{i}.png"] = _png(a)
        b = np.full((40, 30, 3), 240, np.uint8)
        b[15 + i % 5:19 + i % 5, 2:28] = 10
        files[f"shapes/wide/{i}.png"] = _png(b)
    files["shapes/readme.txt"] = b"not an image"
    return files


def test_a_zip_of_images_becomes_a_labelled_dataset_that_trains_and_can_be_saved():
    ds = user_images.dataset_from_upload(_zip(_bars()), "shapes.zip", "My shapes", side=16)
    assert ds.class_names == ("tall", "wide") and ds.image_shape == (16, 16)
    assert len(ds.x_train) + len(ds.x_test) == 24 and len(ds.x_test) == 4
    assert np.bincount(ds.y_test).tolist() == [2, 2]  # split by class
    frames = ds.x_train.reshape(-1, 16, 16)
    assert frames[:, 0, :].max() < 0.1 and frames.max() > 0.9  # light ground inverted: bright strokes on black
    tall = frames[ds.y_train == 0].mean(axis=0)
    assert tall[:, 6:10].mean() > 3 * tall[6:10, :].mean() / 2  # the tall bars' mass runs down the middle
    job = TrainingJob("stacked", {"hidden": (16,), "code_size": 4}, ds, TrainSettings(epochs=3, batch_size=8))
    job.start().join()
    assert job.progress().status == "finished"
    folder = Path(os.environ["AECORE_DATASETS_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    killed = folder / f".{ds.name}.dead.tmp.npz"  # what a save killed mid-write (kill -9) left
    killed.write_bytes(b"\0" * 100)
    os.utime(killed, (1e9, 1e9))
    path = user_images.save_dataset(ds, "My shapes")
    assert not killed.exists() and [p.name for p in folder.iterdir()] == [path.name]
    assert ds.name in list_datasets()
    assert dataset_info(ds.name).train_size == len(ds.x_train) == 20  # read from the file's header
    again = load_dataset(ds.name)
    assert np.array_equal(again.x_train, ds.x_train) and again.class_names == ds.class_names
    assert path.parent == Path(os.environ["AECORE_DATASETS_DIR"])


def test_an_npz_becomes_a_dataset_and_is_read_without_pickle():
    x = (np.random.default_rng(0).random((30, 20, 20)) * 255).astype(np.uint8)
    y = np.arange(30) % 3 + 7
    buf = io.BytesIO()
    np.savez(buf, x=x, y=y)
    ds = user_images.dataset_from_upload(buf.getvalue(), "arrays.npz", side=28, invert="no")
    assert ds.image_shape == (28, 28) and ds.class_names == ("7", "8", "9")
    assert 0 <= ds.x_train.min() and ds.x_train.max() <= 1


def test_an_npz_s_labels_may_be_class_names_or_whole_numbers_saved_as_floats():
    """Labels given as names ("cat", "dog") or as 3.0 were refused: "labels must be 30 whole numbers"."""
    x = (np.random.default_rng(0).random((30, 20, 20)) * 255).astype(np.uint8)
    for y, names in [(np.array(["dog", "cat", " bird"] * 10), ("bird", "cat", "dog")),
                     (np.array([b"dog", b"cat", b"bird"] * 10), ("bird", "cat", "dog")),
                     (np.arange(30.0) % 3 + 7, ("7", "8", "9"))]:
        ds = user_images.dataset_from_upload(_npz(x=x, y=y), "arrays.npz", side=28, invert="no")
        assert ds.class_names == names
        labels = np.concatenate([ds.y_train, ds.y_test])
        assert sorted(np.bincount(labels)) == [10, 10, 10]  # each class keeps its 10 images
    for y, why in [(np.array(["a"] * 29 + [""]), "1 to 60 characters"), (np.arange(30) + 0.5, "whole numbers"),
                   (np.array(["x" * 61] * 30), "1 to 60 characters")]:
        with pytest.raises(DatasetError, match=why):
            user_images.dataset_from_upload(_npz(x=x, y=y), "arrays.npz", side=28)


def _bomb_png(side: int = 10_000) -> bytes:
    """A small PNG that decodes to side x side pixels."""
    from PIL import Image
    buf = io.BytesIO()
    Image.new("L", (side, side)).save(buf, "PNG")
    return buf.getvalue()


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _zip_claiming(size: int) -> bytes:
    """A zip whose one member claims ``size`` bytes (a zip bomb's header)."""
    data = bytearray(_zip({"a/0.png": b"x" * 10}))
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    data[local + 22:local + 26] = size.to_bytes(4, "little")
    data[central + 24:central + 28] = size.to_bytes(4, "little")
    return bytes(data)


@pytest.mark.parametrize("name, make, why", [
    ("x.zip", lambda: b"PK not a zip", "not a readable zip"),
    ("x.zip", lambda: _zip_claiming(2**32 - 1), "unpacks to more than"),
    ("x.zip", lambda: _zip({"a/1.png": b"x"}), "at least 10"),
    ("x.zip", lambda: _zip({**{f"a/{i}.png": _png(np.zeros((8, 8), np.uint8)) for i in range(10)},
                            "a/big.png": _bomb_png()}), "pixels"),
    ("x.zip", lambda: _zip({**{f"a/{i}.png": _png(np.zeros((8, 8), np.uint8)) for i in range(10)},
                            "../evil.png": _png(np.zeros((8, 8), np.uint8))}), "leave its folder"),
    ("x.zip", lambda: _zip({f"a/{i}.png": b"not a png" for i in range(10)}), "not a readable PNG"),
    ("x.npz", lambda: _npz(x=np.array([object()] * 12, dtype=object)), "cannot be read safely"),
    ("x.npz", lambda: _npz(images=np.zeros((12, 5, 7, 2))), "shape"),
    ("x.npz", lambda: _npz(x=np.full((12, 8, 8), np.nan)), "NaN"),
    ("x.npz", lambda: _npz(x=np.zeros((12, 8, 8)), y=np.arange(5)), "labels"),
    ("x.npz", lambda: _npz(z=np.zeros((12, 8, 8))), "no array named"),
    ("x.gif", lambda: b"GIF89a", "upload a .zip"),
])
def test_hostile_uploads_are_refused_and_nothing_is_written(name, make, why, monkeypatch):
    monkeypatch.setattr(user_images, "MAX_IMAGE_PIXELS", 1000 * 1000)  # bounds checked without a 16M-pixel image
    folder = Path(os.environ["AECORE_DATASETS_DIR"])
    with pytest.raises(DatasetError, match=why):
        user_images.dataset_from_upload(make(), name)
    assert not folder.exists() or not any(folder.iterdir())


def test_unreadable_pictures_are_left_out_and_named_when_asked_and_the_rest_load(monkeypatch):
    monkeypatch.setattr(user_images, "MAX_IMAGE_PIXELS", 1000 * 1000)
    files = {**_bars(6), "shapes/tall/cut.png": b"\x89PNG cut short", "shapes/wide/huge.png": _bomb_png(2000),
             "shapes/wide/bomb.png": _bomb_png()}  # over PIL's own limit
    with pytest.raises(DatasetError, match="cut.png is not a readable PNG or JPEG$"):  # no list: refused, as before
        user_images.dataset_from_upload(_zip(files), "x.zip")
    skipped: list[str] = []
    ds = user_images.dataset_from_upload(_zip(files), "x.zip", skipped=skipped)
    assert len(ds.x_train) + len(ds.x_test) == 12 and ds.class_names == ("tall", "wide")
    assert skipped == ["shapes/tall/cut.png is not a readable PNG or JPEG",
                       "shapes/wide/bomb.png has more pixels than PIL decodes safely",
                       "shapes/wide/huge.png is 2000x2000 pixels; at most 1,000,000 pixels an image are decoded"]
    skipped = []
    with pytest.raises(DatasetError, match=r"only 0 of the 10 .* \(first left out: a/0.png is not a readable PNG"):
        user_images.dataset_from_upload(_zip({f"a/{i}.png": b"not a png" for i in range(10)}), "x.zip",
                                        skipped=skipped)


def test_a_saved_dataset_can_be_deleted_and_nothing_outside_the_folder_can():
    ds = user_images.dataset_from_upload(_zip(_bars()), "shapes.zip", "My shapes", side=16)
    path = user_images.save_dataset(ds, "My shapes")
    outside = path.parent.parent / "keep.npz"
    outside.write_bytes(b"x")
    for name in ("../keep", "keep", "upload-../../keep", "upload-nothing-here", ""):
        with pytest.raises(DatasetError, match="no saved dataset"):
            user_images.delete_saved_dataset(name)
    assert ds.name in list_datasets()
    user_images.delete_saved_dataset(ds.name)
    assert not path.exists() and ds.name not in list_datasets() and outside.exists()


def test_too_many_images_and_too_large_a_file_are_refused(monkeypatch):
    monkeypatch.setattr(user_images, "MAX_IMAGES", 15)
    with pytest.raises(DatasetError, match="at most 15"):
        user_images.dataset_from_upload(_zip(_bars(8)), "x.zip")
    monkeypatch.setattr(user_images, "MAX_UPLOAD_BYTES", 1000)
    with pytest.raises(DatasetError, match="MB"):
        user_images.dataset_from_upload(_zip(_bars(8)), "x.zip")


# --- talk presets -----------------------------------------------------------------------------------------------------
def test_prepare_talk_trains_what_is_missing_and_the_presets_then_find_their_runs(digits, capsys):
    from aecore.__main__ import main
    store = RunStore()
    keys = ["seed-recipe", "denoising"]
    assert [p.find_runs(store, "digits") for p in map(TALK_PRESETS.get, keys)] == [[None], [None, None]]
    assert main(["prepare-talk", "--dataset", "digits", "--only", ",".join(keys)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # the denoising demo's plain run is the seed recipe's: trained once, found by its recipe
    assert [(r["preset"], r["trained"], r["ready"]) for r in rows] == [("seed-recipe", 1, 1), ("denoising", 1, 2)]
    assert all(r["seconds"] > 0 for r in rows)
    found = TALK_PRESETS["denoising"].find_runs(store, "digits")
    assert None not in found and found[1] == TALK_PRESETS["seed-recipe"].find_runs(store, "digits")[0]
    assert store.record(found[0]).model == "denoising"
    link = TALK_PRESETS["denoising"].link(found)
    assert link["run"] == found[0] and link["runs"] == ",".join(found)
    rows = prepare_talk(digits, load_dataset, store, report=lambda s: None, keys=keys)  # nothing left to do
    assert [r["trained"] for r in rows] == [0, 0]
    # forced, every run again, but once: the denoising demo's plain run is the seed recipe trained a moment before
    rows = prepare_talk(digits, load_dataset, store, report=lambda s: None, keys=keys, force=True)
    assert [r["trained"] for r in rows] == [1, 1]  # it was [1, 2]: the seed recipe twice
    again = TALK_PRESETS["denoising"].find_runs(store, "digits")
    assert again[1] == TALK_PRESETS["seed-recipe"].find_runs(store, "digits")[0] and not set(again) & set(found)
    assert main(["prepare-talk", "--only", "nope"]) == 2


def test_a_talk_preset_takes_a_run_of_its_recipe_trained_for_more_epochs(digits):
    """The Home page's seed-recipe card trained its own 10-epoch run beside the user's 30-epoch one of the same
    recipe; a run trained longer serves, one trained shorter or otherwise does not."""
    job = _train(digits, epochs=3, hidden=(16,), code_size=5)
    recipe = {"model": "stacked", "dataset": "digits", "config": {"hidden": [16], "code_size": 5}}
    settings = {"seed": 3, "batch_size": 64}
    assert Recipe.make(**recipe, settings={**settings, "epochs": 3}).served_by(job.record)
    assert Recipe.make(**recipe, settings={**settings, "epochs": 2}).served_by(job.record)
    assert not Recipe.make(**recipe, settings={**settings, "epochs": 4}).served_by(job.record)
    assert not Recipe.make(**recipe, settings={**settings, "epochs": 2, "lr": 3e-3}).served_by(job.record)
    assert not Recipe.make(**{**recipe, "config": {"hidden": [16], "code_size": 6}},
                           settings={**settings, "epochs": 2}).served_by(job.record)
    store = RunStore()
    preset = TALK_PRESETS["seed-recipe"]
    assert preset.find_runs(store, "digits") == [None]
    longer = TrainingJob("stacked", {}, digits, TrainSettings(epochs=preset.settings["epochs"] + 1), store=store)
    longer.start().join()
    assert preset.find_runs(store, "digits") == [longer.run_id]


def test_prepare_talk_trains_the_digit_classifier_a_scored_preset_shows(digits, monkeypatch):
    """Samples side by side scores its samples with the dataset's classifier: prepare-talk trains it with the runs,
    where the page trained it in front of the audience, behind a progress bar."""
    import dataclasses
    from aecore import scores, talk
    assert talk.TALK_PRESETS["samples"].scored and not talk.TALK_PRESETS["seed-recipe"].scored
    monkeypatch.setitem(talk.TALK_PRESETS, "scored", dataclasses.replace(talk.TALK_PRESETS["seed-recipe"], scored=True))
    store = RunStore()
    prepare_talk(digits, load_dataset, store, report=lambda s: None, keys=["seed-recipe"])
    assert not (store.root / ".classifiers").exists()
    prepare_talk(digits, load_dataset, store, report=lambda s: None, keys=["scored"])
    monkeypatch.setattr(scores, "train_classifier", lambda *a, **k: pytest.fail("trained again"))
    monkeypatch.setattr(scores, "_TRAINED", {})
    clf, info = scores.classifier_for(digits, store.root)  # from the store's cache
    assert info["test_accuracy"] > 0.8


def test_runs_that_need_their_steps_get_them_on_a_smaller_dataset(digits):
    """A GAN given the samples preset's 10 epochs of the 4,000 embedded digits took 630 steps and drew blobs: a
    family's ``min_steps`` now set the epochs where the dataset is smaller (the autoencoder has none)."""
    preset = TALK_PRESETS["samples"]
    epochs = {n: {r.model: r.train_settings().epochs for r in preset.recipes(n)} for n in ("mnist", "mnist-5k")}
    assert epochs["mnist"] == {"stacked": 10, "vae": 10, "gan": 10}  # 10 x 469 steps >= 4,500; 10 x 938 >= 9,000
    assert epochs["mnist-5k"] == {"stacked": 10, "vae": 141, "gan": 143}  # ceil(4,500 / 32), ceil(9,000 / 63)
    assert {r.train_settings().epochs for r in preset.recipes("digits")} == {10, 375, 392}  # ceil(9,000 / 23)
    assert TALK_PRESETS["manifold"].recipes("mnist-5k")[0].train_settings().epochs == 141
    assert TALK_PRESETS["manifold"].recipes("mnist")[0].train_settings().epochs == 30  # more than it needs
    assert TALK_PRESETS["manifold"].recipes("/no/such/file.npz")[0].train_settings().epochs == 30  # size unknown
    # what the trainer trains is what the gallery looks for
    assert [j.settings.epochs for j in preset.trainer(digits, RunStore()).jobs] == [10, 375, 392]


def test_every_talk_preset_has_valid_recipes_and_a_page():
    for preset in TALK_PRESETS.values():
        assert (ROOT / preset.page).is_file()
        recipes = preset.recipes("mnist-5k")
        assert len(recipes) == len(preset.runs) and all(Recipe.from_json(r.to_json()) == r for r in recipes)
        assert torch.is_tensor(torch.zeros(1))  # the recipes were built without touching a model
