"""The sentence models (Bowman et al. 2016) and their corpora: vocabulary, the grammar and its parser, PTB and users'
files, losses against direct computations, decoding, the homotopy, the CLI."""
import hashlib
import json
import math
import shutil

import numpy as np
import pytest
import torch

from aecore import StepContext, TextDataset, TrainSettings, create_model, list_models, load_dataset, train
from aecore import text as text_mod
from aecore.__main__ import main
from aecore.data import DatasetError, TokenBatch, is_available_offline
from aecore.losses import anneal_weight
from aecore.text import SentenceError, grammar_sentence, homotopy, parses, sentence_batch, words_of
from tests.conftest import SHARED_DATA

FEW = ["the cat sees a ball", "bob will sing", "many dogs are chasing some apples in the park",
       "she painted my house slowly", "the old king laughs", "we carried the red books"]


def tiny(name="sentence-vae", vocab=40, **kw):
    torch.manual_seed(0)
    cfg = {"vocab_size": vocab, "max_len": 12, "embedding_size": 16, "hidden_size": 32, **kw}
    if name == "sentence-vae":
        cfg.setdefault("latent_size", 4)
    return create_model(name, **cfg).eval()


def batch_of(rows: list[list[int]], width: int) -> TokenBatch:
    tokens = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        tokens[i, :len(r)] = r
    return TokenBatch(torch.as_tensor(tokens), torch.as_tensor([len(r) for r in rows]))


# --- corpora --------------------------------------------------------------------------------------------------------
def test_vocabulary_min_count_and_unk():
    data = TextDataset.from_sentences("t", ["a b c", "a b", "a d"], ["a e b"], min_count=2, max_len=5)
    assert data.vocab[:4] == ("<pad>", "<unk>", "<bos>", "<eos>") and data.vocab[4:] == ("a", "b")
    assert data.train_tokens[0].tolist() == [4, 5, 1, 3, 0] and data.train_lengths.tolist() == [4, 3, 3]
    assert data.decode(data.test_tokens[0]) == "a <unk> b"
    batch, unknown = sentence_batch(["A zebra b"], data.vocab, 5)  # case folded, the unknown word reported
    assert batch.tokens[0].tolist() == [4, 1, 5, 3, 0] and unknown == [["zebra"]]
    other = data.with_vocab(("<pad>", "<unk>", "<bos>", "<eos>", "b", "a", "d"))
    assert other.decode(other.train_tokens[2]) == "a <unk>" and other.train_tokens[0].tolist()[:3] == [5, 4, 1]


def test_typed_punctuation_and_clitics_become_the_vocabulary_s_tokens():
    """ "THE Zebra!!! over the moon, quickly?" reported "moon," and "quickly?" as unknown words (read as <unk>) where
    the model knew "moon"; "company's" was unknown to a PTB model that has "company" and "'s"."""
    vocab = ("<pad>", "<unk>", "<bos>", "<eos>", "the", "moon", "company", "'s", "does", "n't", ",", "stop")
    ids = {w: i for i, w in enumerate(vocab)}
    batch, unknown = sentence_batch(["THE Zebra!!! moon, quickly?", "(the) company's stop", "doesn't ... stop!"],
                                    vocab, 12)
    rows = [[vocab[i] for i in r[:n - 1]] for r, n in zip(batch.tokens.tolist(), batch.lengths.tolist())]
    assert rows == [["the", "<unk>", "moon", ",", "<unk>"], ["the", "company", "'s", "stop"],
                    ["does", "n't", "stop"]]
    assert unknown == [["zebra", "quickly"], [], []] and ids["'s"] in batch.tokens[1].tolist()
    with pytest.raises(SentenceError, match="empty"):  # punctuation the vocabulary lacks is left out: nothing left
        sentence_batch(["?! ..."], vocab, 12)


def test_bad_sentences_get_a_reason():
    vocab = ("<pad>", "<unk>", "<bos>", "<eos>", "a", "b")
    for bad, reason in (("   ", "empty"), ("a " * 9, "at most 7"), ("x y z", "none of the words")):
        with pytest.raises(SentenceError, match=reason):
            sentence_batch([bad], vocab, 8)


def test_grammar_corpus_parses_and_the_parser_refuses_what_it_should():
    rng = np.random.default_rng(5)
    assert all(parses(grammar_sentence(rng)) for _ in range(2000))
    for bad in ("the cats sees a ball", "he run", "alice will sees bob", "the dog chased", "a dogs ran",
                "they is sleeping", "the cat slept the ball", "i is running", "", "the the cat runs"):
        assert not parses(bad), bad
    data = load_dataset("grammar")
    train_set = {data.decode(r) for r in data.train_tokens}
    test_set = [data.decode(r) for r in data.test_tokens]
    assert len(train_set) == 10_000 and len(test_set) == 1_000 and train_set.isdisjoint(test_set)
    assert all(parses(s) for s in test_set[:200]) and is_available_offline("grammar")


def _ptb_mirror(tmp_path, monkeypatch, splits=("valid", "test")):
    """A file:// mirror holding copies of the shared PTB files; the cache starts empty."""
    if not (SHARED_DATA / "ptb" / "ptb.valid.txt").exists():
        pytest.skip("../shared/data/ptb is absent")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for split in splits:
        shutil.copy(SHARED_DATA / "ptb" / f"ptb.{split}.txt", mirror)
    monkeypatch.setattr(text_mod, "PTB_MIRRORS", (mirror.as_uri() + "/",))
    return mirror


def test_ptb_downloads_checks_the_checksum_and_caches(tmp_path, monkeypatch):
    mirror = _ptb_mirror(tmp_path, monkeypatch)
    assert not is_available_offline("ptb-small")
    data = load_dataset("ptb-small")
    assert len(data.train_tokens) == 3370 and len(data.test_tokens) == 3761 and "<unk>" in data.vocab
    assert data.decode(data.train_tokens[0]).startswith("consumers may want to move their telephones")
    assert is_available_offline("ptb-small") and not is_available_offline("ptb")
    cached = text_mod.cache_dir() / "ptb" / "ptb.test.txt"
    assert hashlib.md5(cached.read_bytes()).hexdigest() == text_mod.PTB_FILES["test"].md5
    cached.write_bytes(cached.read_bytes()[:-100])  # a truncated cache is refused, not read
    with pytest.raises(DatasetError, match="MD5"):
        text_mod.ptb_lines("test")
    cached.unlink()
    (mirror / "ptb.test.txt").write_text("not the treebank\n")  # nor is a wrong download kept
    with pytest.raises(DatasetError, match="checksum|MD5"):
        text_mod.ptb_lines("test")
    assert not cached.exists()


def test_ptb_small_reads_the_shared_folder(monkeypatch):
    if not (SHARED_DATA / "ptb" / "ptb.test.txt").exists():
        pytest.skip("../shared/data/ptb is absent")
    monkeypatch.setenv("AECORE_DATA_DIR", str(SHARED_DATA))
    assert is_available_offline("ptb-small")
    assert len(load_dataset("ptb-small").test_lengths) == 3761


def test_a_users_text_file(tmp_path):
    good = tmp_path / "mine.txt"
    good.write_text("\n".join(FEW * 4 + ["a rare word here"]) + "\n\n")
    data = load_dataset(str(good))
    assert data.modality == "text" and len(data.train_tokens) + len(data.test_tokens) == 25
    assert "rare" not in data.vocab and "cat" in data.vocab  # words seen once become <unk>
    for content, reason in ((b"\x00\x01binary" * 10, "binary"), (b"caf\xe9 au lait\n" * 20, "UTF-8"),
                            (b"one line\n", "at least 10")):
        bad = tmp_path / "bad.txt"
        bad.write_bytes(content)
        with pytest.raises(DatasetError, match=reason):
            load_dataset(str(bad))


# --- the models ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list_models(modality="text"))
def test_padding_changes_nothing(name):
    model = tiny(name)
    rows = [[5, 6, 7, 3], [8, 3], [9, 10, 11, 12, 13, 3]]
    snug, padded = batch_of(rows, 6), batch_of(rows, 12)
    z = torch.randn(3, 4) if name == "sentence-vae" else None
    with torch.no_grad():
        ll = model.log_likelihood(snug, z)
        torch.testing.assert_close(model.log_likelihood(padded, z), ll)
        alone = model.log_likelihood(batch_of(rows[1:2], 2), None if z is None else z[1:2])
        torch.testing.assert_close(alone, ll[1:2])  # beside longer sentences or alone
        if name == "sentence-vae":
            for a, b in zip(model.posterior_params(snug), model.posterior_params(padded)):
                torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", list_models(modality="text"))
def test_teacher_forced_likelihood_equals_step_by_step_decoding(name):
    model = tiny(name, cell="lstm")
    row = [5, 9, 7, 3]
    z = torch.randn(1, 4) if name == "sentence-vae" else None
    with torch.no_grad():
        state, prev, total = model._initial_state(z, 1), torch.tensor([2]), 0.0
        for word in row:
            logp, state = model._step(prev, state, z)
            total += float(logp[0, word])
            prev = torch.tensor([word])
        assert math.isclose(float(model.log_likelihood(batch_of([row], 4), z)), total, rel_tol=1e-5)


def test_kl_term_is_the_closed_form():
    model = tiny()
    batch = batch_of([[5, 6, 3], [7, 8, 9, 3]], 4)
    out = model(batch)
    mu, logvar = model.posterior_params(batch)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    exact = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(1).mean()
    torch.testing.assert_close(out.losses["kl"], exact)
    assert set(out.losses) == {"reconstruction", "kl"} and out.code.shape == (2, 4)


def test_annealing_values():
    assert anneal_weight(0, 1000, "logistic") == pytest.approx(1 / (1 + math.exp(5)))
    assert anneal_weight(500, 1000, "logistic") == pytest.approx(0.5)
    assert anneal_weight(1000, 1000, "logistic") == pytest.approx(1 / (1 + math.exp(-5)))
    assert [anneal_weight(s, 100, "linear") for s in (0, 50, 100, 500)] == [0.0, 0.5, 1.0, 1.0]
    assert [anneal_weight(s, 100, "cyclical") for s in (0, 25, 50, 75, 100, 125)] == [0, 0.5, 1, 1, 0, 0.5]
    assert anneal_weight(7, 0, "linear") == 1.0
    assert tiny(kl_anneal="none").kl_weight(0) == 1.0
    assert tiny(kl_anneal="linear", anneal_steps=200).kl_weight(50) == 0.25


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_beam_of_width_one_is_greedy(cell):
    model = tiny(cell=cell)
    z = torch.randn(6, 4) * 2
    assert model.generate(z, 6, "beam", width=1) == model.generate(z, 6, "greedy")
    lm = tiny("sentence-lm", cell=cell)
    assert lm.generate(None, 1, "beam", width=1) == lm.generate(None, 1, "greedy")


def test_beam_search_finds_a_sequence_at_least_as_likely_as_greedy():
    model = tiny()
    z = torch.randn(5, 4) * 2

    def logp(ids, row):
        return float(model.log_likelihood(batch_of([ids + [3]], len(ids) + 1), z[row:row + 1]))
    for row, (g, b) in enumerate(zip(model.generate(z, 5, "greedy"), model.generate(z, 5, "beam", width=8))):
        if len(g) < model.config.max_len and len(b) < model.config.max_len:  # both ended within the limit
            assert logp(b, row) >= logp(g, row) - 1e-4


def test_sampling_follows_its_generator_and_temperature():
    model = tiny()
    a = model.sample(8, torch.Generator().manual_seed(3))
    assert a == model.sample(8, torch.Generator().manual_seed(3))
    assert all(all(4 <= i < 40 or i == 1 for i in row) for row in a)  # never <pad>, <bos> or <eos> inside
    with torch.no_grad():
        model.out.weight.mul_(50)  # peaked distributions: no near-ties between the top two words
    cold = model.sample(8, torch.Generator().manual_seed(3), temperature=1e-3)
    z = model.prior_latents(8, torch.Generator().manual_seed(3))
    assert cold == model.generate(z, 8, "greedy")  # near 0, sampling is greedy
    assert model.sample(8, torch.Generator().manual_seed(3), temperature=5.0) != cold


def test_word_dropout_only_in_training():
    model = tiny(word_dropout=1.0)
    batch = batch_of([[5, 6, 7, 3]] * 4, 4)
    z = torch.zeros(4, 4)
    with torch.no_grad():
        evaluated = model.log_likelihood(batch, z)
        model.train()
        model._noise = torch.Generator().manual_seed(0)
        dropped = model.log_likelihood(batch, z)
        model.eval()
        # every input word after the start token became <unk>: the likelihood of the sentence after those inputs
        emb = torch.cat([model.embedding(torch.tensor([[2, 1, 1, 1]])), z[:1, None].expand(1, 4, 4)], 2)
        h, _ = model.decoder_rnn(emb, model._initial_state(z[:1], 1))
        direct = torch.log_softmax(model.out(h[0]), -1)[torch.arange(4), torch.tensor([5, 6, 7, 3])].sum()
    assert not torch.allclose(evaluated, dropped)
    torch.testing.assert_close(dropped[0], direct)


def test_overfitted_model_reconstructs_the_endpoints_of_a_homotopy():
    data = TextDataset.from_sentences("few", FEW * 8, FEW, max_len=12)
    torch.manual_seed(0)
    model = create_model("sentence-vae", vocab_size=len(data.vocab), max_len=12, embedding_size=32, hidden_size=64,
                         latent_size=8, word_dropout=0.0, kl_anneal="none", free_bits=0.5)
    progress = train(model, data.batches("train"), TrainSettings(epochs=60, batch_size=16, lr=3e-3, seed=0))
    assert progress.status == "finished"
    model.eval()
    first, second = FEW[0], FEW[2]
    path = homotopy(model, data.vocab, first, second, steps=5)
    assert [p["t"] for p in path] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert path[0]["sentence"] == first and path[-1]["sentence"] == second
    assert all(p["sentence"] for p in path)
    recon = model.reconstruct(sentence_batch(FEW, data.vocab, 12)[0])
    assert [words_of(r, data.vocab) for r in recon] == FEW
    metrics = model.evaluate(data, iw_samples=5)
    assert metrics["kl"] > 1 and metrics["active_units"] >= 1 and len(metrics["kl_per_dim"]) == 8
    assert metrics["nll_iw"] <= metrics["nll"] + 1e-3  # the IW bound is at least as tight as the ELBO
    tokens = int(data.test_lengths.sum())  # perplexity is per token, end tokens included
    assert metrics["ppl"] == pytest.approx(math.exp(metrics["nll"] * len(data.test_lengths) / tokens))


def test_sentence_models_train_through_the_job_and_lower_their_loss():
    data = TextDataset.from_sentences("few", FEW * 8, FEW, max_len=12)
    for name in list_models(modality="text"):
        # no annealing: the weighted loss it minimises is then the loss it reports
        model = tiny(name, vocab=len(data.vocab), **({"kl_anneal": "none"} if name == "sentence-vae" else {}))
        first = next(data.batches("train").chunks(48))[0]
        with torch.no_grad():
            before = float(model(first).loss)
        train(model, data.batches("train"), TrainSettings(epochs=15, batch_size=16, lr=3e-3, seed=0))
        with torch.no_grad():
            after = float(model.eval()(first).loss)
        assert after < 0.6 * before, (name, before, after)


def test_training_step_reports_the_kl_weight():
    model = tiny(kl_anneal="linear", anneal_steps=100)
    model.train()
    opts = model.configure_optimizers(TrainSettings(seed=0), torch.device("cpu"))
    out = model.training_step(batch_of([[5, 6, 3], [7, 3]], 3), opts, StepContext(25, 0, 100, 10))
    assert float(out["kl_weight"]) == 0.25 and set(out) == {"reconstruction", "kl", "kl_weight"}


# --- the command line --------------------------------------------------------------------------------------------
def test_cli_trains_on_a_text_file_then_evaluates_interpolates_and_samples(tmp_path, capsys):
    corpus = tmp_path / "mine.txt"
    corpus.write_text("\n".join(FEW * 5) + "\n")
    assert main(["train", "sentence-vae", "--dataset", str(corpus), "--epochs", "2", "--set", "hidden_size=32",
                 "--set", "embedding_size=16", "--set", "latent_size=4"]) == 0
    run = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["eval", run]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"test_nll", "test_ppl", "test_kl", "test_active_units"} <= set(metrics)
    assert metrics["test_ppl"] > 1 and metrics["test_nll"] > 0
    assert main(["interpolate", run, "the cat sees a ball", "bob will sing", "--steps", "4", "--decode", "beam",
                 "--width", "3"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["t"] for r in rows] == pytest.approx([0, 1 / 3, 2 / 3, 1], abs=1e-3) and all("sentence" in r for r in rows)
    assert main(["sample", run, "--n", "3", "--seed", "1"]) == 0
    assert len([json.loads(line)["sentence"] for line in capsys.readouterr().out.splitlines()]) == 3
    for bad, message in ((["interpolate", run, "", "bob will sing"], "empty"),
                         (["interpolate", run, "zebra quux", "bob will sing"], "vocabulary"),
                         (["interpolate", run, "a b", "c d", "--steps", "1"], "steps"),
                         (["sample", run, "--temperature", "0"], "temperature"),
                         (["sample", run, "--n", "100000000"], "between 1 and"),
                         (["probe", run], "classifies labelled images")):  # was an AttributeError's traceback
        assert main(bad) == 2, bad
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_cli_refuses_to_interpolate_an_image_run(capsys, digits):
    assert main(["train", "pca", "--dataset", "digits", "--set", "code_size=4"]) == 0
    run = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["interpolate", run, "a", "b"]) == 2
    assert "sentence" in capsys.readouterr().err
