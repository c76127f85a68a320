"""Probes against closed forms and slow loop references."""

import numpy as np
import pytest
import torch

from photossl.training.probes import (
    encode,
    fit_ridge,
    knn_accuracy,
    linear_probe,
    ridge_probe_error,
)


def test_ridge_probe_error_scores_the_dos_with_the_offset_added_back():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 4, generator=g, dtype=torch.float64)
    eldiff = x @ torch.randn(4, 400, generator=g, dtype=torch.float64) + 0.3 * torch.randn(60, 400, generator=g,
                                                                                            dtype=torch.float64)
    empty = 2 * torch.pi * torch.linspace(0, 0.96, 400, dtype=torch.float64).expand(20, 400)
    got = ridge_probe_error(x[:40], eldiff[:40], x[40:], eldiff[40:], empty)
    prediction = fit_ridge(x[:40], eldiff[:40]).predict(x[40:]) + empty
    truth = eldiff[40:] + empty
    expected = [
        sum(abs(float(prediction[b, j] - truth[b, j])) for j in range(100, 400))
        / sum(abs(float(truth[b, j])) for j in range(100, 400))
        for b in range(20)
    ]
    assert got == pytest.approx(np.mean(expected), rel=1e-9)
    # without the offset the denominator is the (smaller) difference target: a larger relative error
    assert ridge_probe_error(x[:40], eldiff[:40], x[40:], eldiff[40:]) > got


def test_ridge_matches_the_normal_equations_at_a_fixed_penalty():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 6, generator=g, dtype=torch.float64)
    y = torch.randn(40, 3, generator=g, dtype=torch.float64)
    probe = fit_ridge(x, y, alphas=[2.5])
    xs = (x - x.mean(0)) / x.std(0)
    weight = torch.linalg.solve(xs.T @ xs + 2.5 * torch.eye(6, dtype=torch.float64), xs.T @ (y - y.mean(0)))
    torch.testing.assert_close(probe.weight, weight)
    torch.testing.assert_close(probe.predict(x), xs @ weight + y.mean(0))


def test_ridge_recovers_a_linear_map_and_prefers_a_small_penalty():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(200, 5, generator=g, dtype=torch.float64)
    w = torch.randn(5, 400, generator=g, dtype=torch.float64)
    y = x @ w + 3.0
    probe = fit_ridge(x, y)
    assert probe.alpha < 1e-2 * float(torch.linalg.svdvals((x - x.mean(0)) / x.std(0)).max() ** 2)
    assert ridge_probe_error(x[:150], y[:150], x[150:], y[150:]) < 1e-3
    noise = torch.randn(200, 400, generator=g, dtype=torch.float64)
    assert ridge_probe_error(x[:150], noise[:150], x[150:], noise[150:]) > 0.5


def _knn_reference(bank, bank_y, query, k, t, n_classes):
    bank = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    predictions = []
    for q in query:
        q = q / np.linalg.norm(q)
        sim = bank @ q
        top = np.argsort(-sim)[:k]
        votes = np.zeros(n_classes)
        for i in top:
            votes[bank_y[i]] += np.exp(sim[i] / t)
        predictions.append(int(np.argmax(votes)))
    return np.array(predictions)


def test_knn_matches_a_loop_reference():
    rng = np.random.default_rng(0)
    bank, bank_y = rng.normal(size=(60, 8)), rng.integers(0, 3, 60)
    query, query_y = rng.normal(size=(25, 8)), rng.integers(0, 3, 25)
    expected = np.mean(_knn_reference(bank, bank_y, query, 7, 0.1, 3) == query_y)
    got = knn_accuracy(torch.tensor(bank), torch.tensor(bank_y), torch.tensor(query), torch.tensor(query_y),
                       k=7, temperature=0.1, chunk=4)
    assert got == pytest.approx(expected)


def test_knn_on_clustered_features_is_perfect():
    centres = torch.eye(4) * 10
    labels = torch.arange(4).repeat(10)
    feats = centres[labels] + 0.1 * torch.randn(40, 4, generator=torch.Generator().manual_seed(0))
    assert knn_accuracy(feats, labels, feats, labels, k=5) == 1.0


def test_linear_probe_separable_data_and_seeds():
    g = torch.Generator().manual_seed(3)
    labels = torch.arange(3).repeat(40)
    feats = torch.randn(120, 5, generator=g) + 4 * torch.nn.functional.one_hot(labels, 5).float()
    result = linear_probe(feats[:90], labels[:90], feats[90:], labels[90:], seeds=[0, 1], epochs=100)
    assert result.seeds == (0, 1) and len(result.accuracies) == 2
    assert result.mean > 0.95
    again = linear_probe(feats[:90], labels[:90], feats[90:], labels[90:], seeds=[0, 1], epochs=100)
    assert again.accuracies == result.accuracies
    chance = linear_probe(feats[:90], labels[torch.randperm(120, generator=g)][:90], feats[90:], labels[90:],
                          seeds=[0], epochs=100)
    assert chance.mean < result.mean


def test_encode_restores_training_mode_and_batches():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    model.train()
    x = torch.randn(10, 1, 2, 2)
    feats = encode(model, x, batch_size=3)
    assert model.training
    model.eval()
    torch.testing.assert_close(feats, model(x).detach())
