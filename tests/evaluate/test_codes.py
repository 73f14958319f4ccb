"""aelab.evaluate and the sparse models (sparse-kl, k-sparse) against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aelab.callbacks import LambdaCallback
from aelab.errors import ConfigError
from aelab.evaluate import codes as E
from aelab.models import create_model
from aelab.models.dense import keep_top_k
from aelab.train import TrainConfig, fit


class _Data:
    """A minimal labelled dataset (what evaluate needs of data.Dataset)."""

    def __init__(self, x, y, class_names):
        self.x, self.y, self.class_names = x, y, class_names

    def __len__(self):
        return len(self.x)


# ---------------------------------------------------------------- metrics


def test_cluster_accuracy_is_one_for_a_permuted_labelling():
    y = np.array([0, 0, 1, 1, 2, 2, 2])
    clusters = np.array([2, 2, 0, 0, 1, 1, 1])  # the same partition under other names
    assert E.cluster_accuracy(y, clusters) == 1.0


def test_cluster_accuracy_hand_computed():
    # Contingency (rows classes 0,1; cols clusters 0,1): [[1, 3], [2, 0]]. The best matching is
    # class 0 -> cluster 1 (3) and class 1 -> cluster 0 (2): 5 of 6 right.
    y = np.array([0, 0, 0, 0, 1, 1])
    clusters = np.array([0, 1, 1, 1, 0, 0])
    assert E.cluster_accuracy(y, clusters) == pytest.approx(5 / 6)


def test_kmeans_scores_on_separated_blobs():
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0], [10, 0], [0, 10]])
    y = np.repeat([0, 1, 2], 30)
    x = centers[y] + 0.1 * rng.standard_normal((90, 2))
    scores = E.kmeans_scores(x, y, seed=0)
    assert scores == {"kmeans_acc": 1.0, "kmeans_nmi": pytest.approx(1.0)}


def test_accuracy_report_per_class_by_name():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 0, 2]
    rep = E.accuracy_report(y_true, y_pred, ["cat", "dog", "eel"])
    assert rep["accuracy"] == pytest.approx(4 / 6)
    assert rep["per_class_accuracy"] == {"cat": pytest.approx(2 / 3), "dog": 0.5, "eel": 1.0}
    assert rep["confusion"] == [[2, 1, 0], [1, 1, 0], [0, 0, 1]]


def test_novelty_auroc_on_a_known_ordering():
    # Seen class 0 scores 1, 2, 3. Unseen class 1 scores 4, 5: above every seen score, AUROC 1.
    # Unseen class 2 scores 0.5 (above no seen score) and 2.5 (above 1 and 2): 2 of 6 pairs.
    scores = np.array([1, 2, 3, 4, 5, 0.5, 2.5])
    labels = np.array([0, 0, 0, 1, 1, 2, 2])
    res = E.novelty_auroc(scores, labels, seen=[0], class_names=["a", "b", "c"])
    assert res["auroc_per_class"] == {"b": 1.0, "c": pytest.approx(2 / 6)}
    # Overall: 4 novel × 3 seen = 12 pairs, right: 3 + 3 + 0 + 2 = 8.
    assert res["auroc"] == pytest.approx(8 / 12)


def test_sparsity_stats_hand_computed():
    z = torch.tensor([[0.0, 0.5, 0.0], [0.0, 0.2, 0.3]])
    s = E.sparsity_stats(z)
    assert s["mean_activation"] == pytest.approx(1.0 / 6)
    assert s["active_fraction"] == pytest.approx(3 / 6)
    assert s["dead_units"] == 1 and s["dead_fraction"] == pytest.approx(1 / 3)


def test_linear_probe_picks_c_on_validation_and_separates_blobs():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 40)
    x = np.stack([y * 4.0, -y * 4.0], 1) + rng.standard_normal((80, 2))
    parts = [(x[i::3], y[i::3]) for i in range(3)]
    res = E.linear_probe(*parts, Cs=[0.1, 1.0])
    assert res["accuracy"] == 1.0 and res["C"] in (0.1, 1.0)
    assert len(res["predictions"]) == len(parts[2][1])


# ---------------------------------------------------------------- k-sparse


def test_keep_top_k_keeps_exactly_k_and_passes_gradient_only_through_them():
    z = torch.tensor([[3.0, -1.0, 2.0, 0.5, 4.0], [0.1, 0.2, 0.3, 0.4, 0.5]], requires_grad=True)
    out = keep_top_k(z, 2)
    assert torch.equal(out.detach(), torch.tensor([[3.0, 0, 0, 0, 4.0], [0, 0, 0, 0.4, 0.5]]))
    assert ((out != 0).sum(1) == 2).all()
    out.sum().backward()
    assert torch.equal(z.grad, torch.tensor([[1.0, 0, 0, 0, 1], [0, 0, 0, 1, 1]]))


def test_k_sparse_encodes_with_k_in_training_and_alpha_k_in_eval():
    torch.manual_seed(0)
    m = create_model("k-sparse", hidden=[40], k=5, alpha=2.0)
    x = torch.rand(8, 1, 28, 28)
    m.train()
    assert ((m.encode(x) != 0).sum(1) == 5).all()
    m.eval()
    assert ((m.encode(x) != 0).sum(1) == 10).all()
    # Gradient reaches exactly the encoder rows of the kept units.
    m.train()
    z = m.encode(x[:1])
    z.sum().backward()
    rows = m.encoder[1].weight.grad.abs().sum(1) != 0
    assert torch.equal(rows, (z[0] != 0))


def test_k_sparse_reconstructs_with_k_units_in_eval_so_val_loss_matches_train_loss():
    torch.manual_seed(0)
    m = create_model("k-sparse", hidden=[40], k=5, alpha=3.0)
    x = torch.rand(8, 1, 28, 28)
    m.train()
    train_loss, train_out = m.loss(x)["loss"].item(), m(x)
    m.eval()
    assert m.loss(x)["loss"].item() == pytest.approx(train_loss, rel=1e-6)
    assert torch.allclose(m(x), train_out)
    expected = m.decode_raw(keep_top_k(m.encoder(x), 5))
    assert torch.equal(m.reconstruct_raw(x), expected)
    # ... while the eval-mode features keep alpha·k units, which would reconstruct differently.
    assert not torch.allclose(m.decode_raw(m.encode(x)), expected)


def test_k_schedule_falls_linearly_over_the_first_half_and_fit_drives_it():
    m = create_model("k-sparse", hidden=[64], k=10, k_start=50)
    seen = []
    x = torch.rand(16, 1, 28, 28)
    fit(m, {"train": x}, TrainConfig(epochs=6, batch_size=8),
        [LambdaCallback(on_epoch_end=lambda state, rec: seen.append(m.k_train))])
    assert seen == [50, 37, 23, 10, 10, 10]  # 50 -> 10 over epochs 1..4 (half of 6 = 3 steps)
    assert m.k_train == 10


def test_tied_k_sparse_shares_the_encoder_weight_and_round_trips(tmp_path):
    from aelab.runs import load_checkpoint, save_checkpoint

    m = create_model("k-sparse", hidden=[32], k=4, tied=True)
    assert sorted(m.state_dict()) == ["decoder.0.bias", "encoder.1.bias", "encoder.1.weight"]
    z = torch.zeros(1, 32)
    z[0, 3] = 1.0
    raw = m.decode_raw(z).flatten()
    assert torch.allclose(raw, m.encoder[1].weight[3])  # decoder column 3 = encoder row 3
    with torch.no_grad():
        m.encoder[1].weight.mul_(2)
    save_checkpoint(tmp_path / "m.safetensors", m)
    back = load_checkpoint(tmp_path / "m.safetensors")
    assert torch.equal(back.encoder[1].weight, m.encoder[1].weight)
    assert torch.allclose(back.decode_raw(z), m.decode_raw(z))


@pytest.mark.parametrize(
    ("model", "params", "fragment"),
    [
        ("k-sparse", {"hidden": [32], "k": 40}, "k = 40"),
        ("k-sparse", {"hidden": [32], "k": 20, "alpha": 2}, "alpha = 2"),
        ("k-sparse", {"hidden": [32], "k": 8, "k_start": 4}, "k_start = 4"),
        ("k-sparse", {"hidden": [64, 32], "k": 8, "tied": True}, "tied"),
        ("sparse-kl", {"rho": 1.5}, "rho = 1.5"),
        ("sparse-kl", {"rho": 0.0}, "rho = 0.0"),
    ],
)
def test_bad_sparse_params_are_one_sentence(model, params, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")) as err:
        create_model(model, **params)
    assert str(err.value).count(". ") == 0 and str(err.value).endswith(".")


# ---------------------------------------------------------------- KL sparsity


def test_kl_penalty_hand_computed():
    m = create_model("sparse-kl", hidden=[2], rho=0.1, beta=0.5)
    z = torch.tensor([[0.2, 0.5], [0.4, 0.5]])  # mean activations 0.3 and 0.5
    kl = sum(0.1 * math.log(0.1 / q) + 0.9 * math.log(0.9 / (1 - q)) for q in (0.3, 0.5))
    assert m.penalty(z).item() == pytest.approx(0.5 * kl, rel=1e-5)
    codes = m.encode(torch.rand(4, 1, 28, 28))
    assert ((codes > 0) & (codes < 1)).all()  # sigmoid code units


# ---------------------------------------------------------------- models at work


def test_reconstruction_errors_are_per_image_mse():
    m = create_model("stacked", hidden=[16])
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        expected = (m(x) - x).square().flatten(1).mean(1)
    assert torch.allclose(E.reconstruction_errors(m, x), expected, atol=1e-6)
    bce = E.reconstruction_errors(m, x, score="bce")
    assert bce.shape == (5,) and (bce > 0).all()


def test_decoder_filters_are_the_weight_columns_of_a_one_layer_decoder():
    m = create_model("k-sparse", hidden=[12], k=3)
    f = E.decoder_filters(m, n=5)
    assert f.shape == (5, 1, 28, 28)
    w = m.decoder[0].weight[:, 2].detach()  # (784,) column of code unit 2
    expected = (w - w.min()) / (w.max() - w.min())
    assert torch.allclose(f[2].flatten(), expected, atol=1e-5)


def test_finetune_logs_each_epoch_and_learns_a_trivial_task():
    torch.manual_seed(0)
    x = torch.zeros(60, 1, 28, 28)
    y = torch.arange(60) % 2
    x[y == 1, :, :14] = 1.0  # class 1: top half lit
    data = _Data(x, y, ["dark", "top"])
    m = create_model("stacked", hidden=[30])
    lines = []
    res = E.finetune(m, data, data, 2, head=[10], epochs=15, batch_size=16, learning_rate=1e-2,
                     log=lines.append)
    assert len(lines) == 15 and "train error" in lines[0] and "test accuracy" in lines[0]
    assert [h["epoch"] for h in res["history"]] == list(range(1, 16))
    assert res["accuracy"] == 1.0
    # The study's model is left as it was: fine-tuning trains a copy.
    assert not torch.equal(res["classifier"].autoencoder.encoder[1].weight, m.encoder[1].weight)


def test_the_classifier_head_sees_evaluation_time_codes_while_training():
    m = create_model("k-sparse", hidden=[40], k=5, alpha=2.0)
    clf = E.CodeClassifier(m, 3).train()
    assert clf.training and not clf.autoencoder.training
    codes = clf.autoencoder.encode(torch.rand(4, 1, 28, 28))
    assert ((codes != 0).sum(1) == 10).all()  # alpha·k, as at test time
