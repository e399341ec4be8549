"""Out-of-scope scores, AUROC, thresholds and temperature fitting, against hand-computed values."""

import math

import numpy as np
import pytest
import torch

from cl_prompts.inference import Calibration, auroc, calibrate, out_of_scope_score, rejection_report
from cl_prompts.inference.out_of_scope import fit_temperature, threshold_at

INF = float("inf")


def test_scores_ignore_unseen_classes_and_match_their_formulas():
    logits = torch.tensor([[2.0, 0.0, -INF], [1.0, 1.0, -INF]])
    assert out_of_scope_score(logits, "max_logit").tolist() == [2.0, 1.0]
    p = out_of_scope_score(logits, "max_probability", temperature=1.0)
    assert p.tolist() == pytest.approx([math.exp(2) / (math.exp(2) + 1), 0.5])
    e = out_of_scope_score(logits, "energy", temperature=2.0)
    assert e.tolist() == pytest.approx([2 * math.log(math.exp(1) + 1), 2 * math.log(2 * math.exp(0.5))])


def test_unknown_score_and_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="score must be one of"):
        out_of_scope_score(torch.zeros(2, 3), "entropy")
    with pytest.raises(ValueError, match=r"logits must be \(B, C\)"):
        out_of_scope_score(torch.zeros(3))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        Calibration(temperature=0.0)
    with pytest.raises(ValueError, match="unknown calibration field"):
        Calibration.from_dict({"score": "max_logit", "threshhold": 1.0})


def test_auroc_counts_pairs_and_half_ties():
    assert auroc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auroc(np.array([1.0]), np.array([2.0])) == 0.0
    assert auroc(np.array([1.0, 3.0]), np.array([1.0, 2.0])) == pytest.approx((0.5 + 0 + 1 + 1) / 4)
    rng = np.random.default_rng(0)
    a, b = rng.normal(1, 1, 200), rng.normal(0, 1, 300)
    brute = np.mean([(x > y) + 0.5 * (x == y) for x in a for y in b])
    assert auroc(a, b) == pytest.approx(brute)


def test_threshold_rejects_the_asked_share_of_in_scope_inputs():
    scores = np.arange(100, dtype=float)
    t = threshold_at(scores, 0.05)
    assert np.mean(scores < t) == 0.05
    assert threshold_at(scores, 0.0) == 0.0  # nothing in scope is rejected
    report = rejection_report(scores, np.array([-1.0, 3.0, 50.0]), t)
    assert report["in_scope_recall"] == 0.95 and report["out_of_scope_recall"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="false_rejection"):
        threshold_at(scores, 1.0)


def test_fitted_temperature_recovers_the_one_that_made_the_labels():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4000, 5, generator=gen) * 3
    labels = torch.multinomial(torch.softmax(logits / 2.0, dim=1), 1, generator=gen).flatten()
    assert fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.1)


def test_calibrate_combines_temperature_and_threshold():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(400, 4, generator=gen) * 5
    labels = torch.multinomial(torch.softmax(logits / 0.5, dim=1), 1, generator=gen).flatten()
    cal = calibrate(logits, labels, "max_probability", 0.1, source="toy")
    s = cal.scores(logits).numpy()
    assert np.mean(s < cal.threshold) == pytest.approx(0.1, abs=0.003)
    assert 0.3 < cal.temperature < 0.8  # the labels are sharper than softmax(logits)
    assert Calibration.from_dict(cal.to_dict()) == cal


def test_separable_labels_give_a_bounded_temperature():
    logits = torch.tensor([[3.0, 0.0], [0.0, 3.0]] * 10)
    t = fit_temperature(logits, logits.argmax(1))
    assert 0 < t <= 1e-3 * float(logits.std()) * 1.0001


def test_combined_score_standardises_both_parts_on_the_calibration_data():
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(300, 5, generator=gen)
    similarity = torch.rand(300, generator=gen, dtype=torch.float64)
    cal = calibrate(logits, logits.argmax(1), "max_logit+similarity", 0.05, similarity=similarity,
                    similarity_weight=2.0)
    m = logits.double().amax(1)
    expected = (m - m.mean()) / m.std() + 2.0 * (similarity - similarity.mean()) / similarity.std()
    assert torch.allclose(cal.scores(logits, similarity), expected)
    assert np.mean(expected.numpy() < cal.threshold) == pytest.approx(0.05, abs=0.004)
    with pytest.raises(ValueError, match="needs the method's class similarity"):
        cal.scores(logits)
    with pytest.raises(ValueError, match="needs the method's class similarity"):
        calibrate(logits, logits.argmax(1), "max_logit+similarity")
    with pytest.raises(ValueError, match="needs standardise"):
        Calibration(score="max_logit+similarity")


def test_rows_whose_class_was_not_scored_do_not_drive_the_temperature_to_zero():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(2000, 5, generator=gen) * 3
    labels = torch.multinomial(torch.softmax(logits / 2.0, dim=1), 1, generator=gen).flatten()
    missed = logits.clone()
    missed[:50, :] = torch.where(torch.arange(5)[None] == labels[:50, None], -INF, missed[:50, :])
    assert fit_temperature(missed, labels) == pytest.approx(fit_temperature(logits[50:], labels[50:]))
    assert fit_temperature(missed, labels) == pytest.approx(2.0, rel=0.15)
