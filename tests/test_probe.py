"""The few-label probe's pieces: labelled subsets and the logistic regression on codes."""
import numpy as np
from sklearn.linear_model import LogisticRegression

from aecore.probe import _logistic, labelled_subset


def test_labelled_subset_takes_n_per_class_and_is_seeded():
    labels = np.repeat(np.arange(4), 30)
    idx = labelled_subset(labels, 5, seed=3)
    assert np.bincount(labels[idx]).tolist() == [5, 5, 5, 5] and len(set(idx)) == 20
    assert np.array_equal(idx, labelled_subset(labels, 5, seed=3))
    assert not np.array_equal(idx, labelled_subset(labels, 5, seed=4))
    assert len(labelled_subset(labels, None, seed=0)) == 120


def test_logistic_is_logistic_regression_on_centred_codes_over_one_scale():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    codes = rng.normal(size=(300, 6)) + np.eye(3, 6)[y] * 2.0
    codes[:, 5] *= 50.0  # a loud unit, not rescaled on its own
    train, test = slice(0, 200), slice(200, 300)
    centre = codes[train].mean(0)
    scale = np.sqrt(np.mean((codes[train] - centre) ** 2))
    ref = LogisticRegression(max_iter=1000).fit((codes[train] - centre) / scale, y[train])
    expected = ref.score((codes[test] - centre) / scale, y[test])
    assert _logistic(codes[train], y[train], codes[test], y[test]) == expected
    assert expected > 0.7  # the three classes are separable along units 0-2
    # shifting the units or scaling all of them by one factor changes nothing
    moved = codes * 1000.0 + np.arange(6) * 7.0
    assert abs(_logistic(moved[train], y[train], moved[test], y[test]) - expected) <= 0.01  # one sample of 100


def test_the_experiment_reports_progress_within_a_point(digits):
    from aecore import TrainSettings, create_model, train
    from aecore.probe import few_label_experiment
    model = create_model("stacked", input_shape=digits.image_shape, hidden=(16,), code_size=8)
    train(model, digits.x_train, TrainSettings(epochs=1))
    seen = []
    rows = few_label_experiment(model, digits, [None], seeds=1, steps=200, progress=seen.append)
    assert len(rows) == 4
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert len([f for f in seen if 0.0 < f < 1.0]) >= 6  # one point, yet the bar moves while its networks train


def test_the_networks_take_five_passes_over_a_large_labelled_set_and_the_bar_counts_their_steps(digits, monkeypatch):
    """300 steps of 64 were a third of a pass over MNIST's 60,000 labels: the page's "all" point scored 90.8 % from
    scratch where 5 passes give 97.1 %."""
    import aecore.probe as probe
    from aecore import TrainSettings, create_model, train
    model = create_model("stacked", input_shape=digits.image_shape, hidden=(16,), code_size=8)
    train(model, digits.x_train, TrainSettings(epochs=1))
    taken, seen = [], []
    fit = probe._fit_network

    def spy(encoder_model, x, y, n_classes, steps, seed, **kw):
        taken.append((len(x), steps, seen[-1] if seen else 0.0))
        return fit(encoder_model, x, y, n_classes, steps, seed, **kw)

    monkeypatch.setattr(probe, "_fit_network", spy)
    n = len(digits.y_train)
    probe.few_label_experiment(model, digits, [1, None], seeds=1, steps=20, progress=seen.append)
    big = -(-5 * n // 64)
    assert [t[:2] for t in taken] == [(10, 20), (10, 20), (n, big), (n, big)]
    assert big > 20 and probe.network_steps(60000, 300) == 4688
    assert seen == sorted(seen) and seen[-1] == 1.0
    # the bar counts steps: the first point (40 steps) ends well before half of it (it ended at 0.5 before)
    assert 0.0 < taken[2][2] < 0.3
