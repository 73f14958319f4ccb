"""comparison, run_table, lr_verdicts and observations: their words follow the measured numbers."""

from __future__ import annotations

from aelab.steps.verdicts import VERDICTS

TRAINED = ("ks-k4", "ks-k8", "vae", "conv")


def test_lr_verdicts_follow_the_validation_loss(every_step):
    for name in TRAINED:
        e = every_step.runs[name]
        first, last = e["history"][0]["val_loss"], e["history"][-1]["val_loss"]
        expected = "learning" if (first - last) / abs(first) >= 0.01 else "not learning"
        assert e["verdict"] == expected and e["verdict"] in VERDICTS


def test_comparison_names_the_lowest_validation_loss(every_step):
    best = min(TRAINED, key=lambda n: every_step.runs[n]["val_loss"])
    summary = every_step.metrics["summary"]
    line = next(s for s in summary if s.startswith("- Lowest validation loss:"))
    assert line.startswith(f"- Lowest validation loss: {best} ({every_step.runs[best]['val_loss']:.4f}")


def test_run_table_has_a_row_per_run_with_its_code_activation(every_step):
    summary = every_step.metrics["summary"]
    data = next(s for s in summary if s.startswith("Data: digits;"))
    assert data.endswith("images.")
    for name in TRAINED:
        row = next(s for s in summary if s.startswith(f"{name:<18}"))
        assert row.rstrip().endswith(f"{every_step.runs[name]['mean_code_activation']:.4f}")


def test_summaries_follow_the_order_of_the_steps(every_step):
    summary = every_step.metrics["summary"]
    order = ["Linear probe", "Fine-tuned classifier", "k-means", "Novelty", "Comparison:", "Data:",
             "Verdicts", "Observations:"]
    firsts = [next(i for i, s in enumerate(summary) if s.startswith(o)) for o in order]
    assert firsts == sorted(firsts)
