"""The observations step: sentences drawn from numbers the test controls, which flip with them."""

import re

import pytest

from aelab.config import load_study
from aelab.datasets import DataInfo
from aelab.records import RunRecord
from aelab.registry import STEPS
from aelab.steps import StudyContext

ES = 'train.early_stopping={monitor="val_loss", patience=3, min_delta=0.01}'


@pytest.fixture(scope="module")
def study():
    """quickstart's four runs (stacked/sparse × batch 32/256) with patience 3, min_delta 0.01."""
    return load_study("quickstart", overrides=[ES])


def record(name, val, train=None, spe=1.0, status="completed", metrics=None, penalty=0.0, epochs_max=10):
    label, bs = name.rsplit("-bs", 1)
    train = train or [v + 0.01 for v in val]
    hist = [{"epoch": i, "train_loss": t, "val_loss": v, "val_penalty": penalty, "seconds": spe}
            for i, (t, v) in enumerate(zip(train, val), 1)]
    return RunRecord(name=name, model="stacked", label=label,
                     params={"activity_l1": 1e-5} if label == "sparse" else {},
                     sweep={"batch_size": int(bs)}, seed=42, batch_size=int(bs), optimizer="nadam",
                     learning_rate=1e-3, status=status, epochs_run=len(hist), epochs_max=epochs_max,
                     stopped_early=status == "stopped_early", train_loss=train[-1], val_loss=val[-1],
                     test_loss=val[-1] + 0.001, seconds=spe * len(hist), seconds_per_epoch=spe,
                     history=hist, metrics=dict(metrics or {}))


def observe(study, records) -> str:
    ctx = StudyContext(study, {}, records, {}, None, None, data_info=DataInfo("mnist", "mnist", False, "", 0, (1, 28, 28), [], "", {}, {}))
    STEPS.get("observations").fn(ctx)
    assert ctx.summary[0] == "Observations:"
    return "\n".join(ctx.summary)


def line_of(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(start))


@pytest.mark.parametrize("small_is_better", [True, False])
def test_batch_size_names_the_better_and_the_faster_one(study, small_is_better):
    if small_is_better:  # batch 32: lower loss but slower epochs
        recs = [record("stacked-bs32", [0.5, 0.3, 0.20], spe=2.0), record("stacked-bs256", [0.6, 0.4, 0.25], spe=0.4)]
    else:  # the numbers flipped: batch 256 lower, batch 32 faster
        recs = [record("stacked-bs32", [0.5, 0.4, 0.30], spe=0.3), record("stacked-bs256", [0.5, 0.3, 0.25], spe=1.5)]
    line = line_of(observe(study, recs), "- stacked:")
    better, faster = ("32", "256") if small_is_better else ("256", "32")
    worse = faster
    assert re.search(rf"batch {better} reaches the lower validation loss \(\S+ vs \S+ at batch {worse}", line)
    assert f"batch {faster} is faster per epoch" in line
    lo, hi = (0.20, 0.25) if small_is_better else (0.25, 0.30)
    assert f"({lo:.4f} vs {hi:.4f} at batch {worse}, {(hi - lo) / hi:.1%} lower)" in line
    s_fast, s_slow = (0.4, 2.0) if small_is_better else (0.3, 1.5)
    assert f"({s_fast:.2f} s vs {s_slow:.2f} s, {s_slow / s_fast:.1f}× less time)" in line


def test_early_stopping_says_whether_the_loss_was_still_falling(study):
    falling = record("stacked-bs32", [0.5, 0.40, 0.398, 0.395, 0.393], status="stopped_early")
    rising = record("stacked-bs256", [0.5, 0.40, 0.41, 0.42, 0.43], status="stopped_early")
    full = record("sparse-bs32", [0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.12, 0.1, 0.09, 0.08])
    text = observe(study, [falling, rising, full])
    assert ("- stacked-bs32 stopped early at epoch 5 of 10; its val_loss still fell 0.0070 over the "
            "last 3 epochs (0.0023 per epoch), but no epoch beat the best (0.4000 at epoch 2) by more "
            "than min_delta 0.01") in text
    assert ("- stacked-bs256 stopped early at epoch 5 of 10; its val_loss rose 0.0300 over the last 3 "
            "epochs, so it had stopped improving (best 0.4000 at epoch 2)") in text
    assert ("- sparse-bs32 ran all 10 epochs without early stopping ending it; its val_loss still fell "
            "0.0400 over the last 3 epochs") in text and "more epochs would likely lower it" in text


@pytest.mark.parametrize("sparser", [True, False])
def test_regulariser_effect_on_loss_and_code(study, sparser):
    act = {"mean_activation": 0.5, "active_fraction": 0.3}
    plain = {"mean_activation": 1.0, "active_fraction": 0.6}
    if not sparser:
        act, plain = plain, act
    recs = [record("stacked-bs256", [0.3, 0.25], metrics=plain),
            record("sparse-bs256", [0.3, 0.26], metrics=act, penalty=0.004)]
    line = line_of(observe(study, recs), "- sparse vs stacked")
    assert "(activity_l1 1e-05 vs 0) at batch 256" in line
    assert "validation loss 0.2600 vs 0.2500, of which the penalty is 0.0040" in line
    assert "the regulariser raised the loss by 4.0%" in line
    assert ("made the code sparser" if sparser else "made the code denser") in line
    ratio = 0.5 if sparser else 2.0
    assert f"({ratio:.2f}×)" in line


def test_code_not_measured_says_which_step_to_add(study):
    recs = [record("stacked-bs32", [0.3, 0.25]), record("sparse-bs32", [0.3, 0.2502])]
    line = line_of(observe(study, recs), "- sparse vs stacked")
    assert "hardly changed the loss" in line and "add a `sparsity` or `code_activation` step" in line


def test_fit_verdicts_follow_the_gap_and_the_trend(study):
    over = record("stacked-bs32", [0.30, 0.20, 0.22, 0.25], train=[0.3, 0.15, 0.12, 0.10])
    under = record("stacked-bs256", [0.50, 0.40, 0.35, 0.30], train=[0.52, 0.41, 0.36, 0.31])
    flat = record("sparse-bs32", [0.30, 0.2000, 0.2000, 0.2000], train=[0.3, 0.2, 0.2, 0.2])
    text = observe(study, [over, under, flat])
    assert re.search(r"- Over-fitting .*stacked-bs32 \(val 0\.2500 vs train 0\.1000, \+150\.0%; val rose "
                     r"0\.0500 since its lowest, epoch 2\)", text)
    assert re.search(r"- Under-fitted.*stacked-bs256", text) and "stacked-bs256" not in line_of(text, "- Over")
    assert re.search(r"- No sign of over- or under-fitting.*sparse-bs32", text)
    # Lower than 3 epochs before is not "still falling" when the last epoch is no new low.
    assert ("- stacked-bs32 ran all 4 epochs without early stopping ending it; its val_loss had "
            "stopped falling (lowest 0.2000 at epoch 2, last 0.2500).") in text
    assert "- sparse-bs32 ran all 4 epochs without early stopping ending it; its val_loss had stopped" in text


def test_one_run_and_an_untrained_run(study):
    failed = record("sparse-bs256", [0.3], status="failed")
    failed.reason, failed.history = "ConfigError: boom", []
    text = observe(study, [record("stacked-bs32", [0.3, 0.2]), failed])
    assert "Batch size:" not in text and "Regularisers:" not in text
    assert "- sparse-bs256 has no trained model (failed: ConfigError: boom)." in text


def test_a_swept_regulariser_is_compared_step_by_step_in_the_right_direction(study):
    """k-sparse with k = 10, 25, 40: smaller k regularises more; neighbours are compared."""
    recs = []
    for k, val in ((10, 0.30), (25, 0.25), (40, 0.20)):
        r = record("stacked-bs32", [0.4, val])
        r.name, r.label, r.model, r.params, r.sweep = f"ks-k{k}", "ks", "k-sparse", {"k": k}, {"k": k}
        recs.append(r)
    lines = [ln for ln in observe(study, recs).splitlines() if ln.startswith("- ks vs ks")]
    assert len(lines) == 2
    assert "(k 25 vs 40) at batch 32: validation loss 0.2500 vs 0.2000" in lines[0]
    assert "(k 10 vs 25)" in lines[1] and "the regulariser raised the loss by 20.0%" in lines[1]


def test_unmatched_training_is_named(study):
    plain = record("stacked-bs32", [0.3, 0.25])
    sparse = record("sparse-bs256", [0.3, 0.25])
    sparse.epochs_max = 20
    line = line_of(observe(study, [plain, sparse]), "- sparse vs stacked")
    assert "though trained differently (batch 256 vs 32, epochs 20 vs 10)" in line
