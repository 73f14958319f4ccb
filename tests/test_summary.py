"""Model summaries show what the assignment describes: every layer, the output activation, the
regulariser or constraint on the layer it acts on, the parameter counts; and the training line."""

import pytest

from aelab.models import create_model, list_models
from aelab.models.summary import model_summary, number, training_line


@pytest.fixture(scope="module")
def summaries():
    return {name: model_summary(create_model(name)) for name in list_models()}


@pytest.mark.parametrize("name", list_models())
def test_every_model_summary_prints_clean_numbers(summaries, name):
    text = summaries[name]
    assert "Units." not in text and "-0.0000" not in text and "-0 " not in text
    assert "Total params:" in text and "Trainable params:" in text
    assert "output activation: Sigmoid" in text  # every registered model defaults to a sigmoid
    assert "Loss: " in text
    assert all(len(line) <= 88 for line in text.splitlines())


def test_stacked_summary_has_the_assignment_numbers_and_no_regulariser(summaries):
    text = summaries["stacked"]
    assert "Trainable params: 428,354" in text and "Total params: 428,354" in text
    for layer in ("encoder.1 (Linear)", "encoder.3 (Linear)", "decoder.2 (Linear)"):
        assert layer in text
    assert "(None, 50)" in text and "(None, 784)" in text
    assert "L1 activity penalty" not in text and "Regulariser" not in text
    assert "Loss: binary cross-entropy" in text


def test_sparse_summary_names_the_l1_penalty_on_the_codes(summaries):
    text = summaries["stacked-sparse"]
    assert "Trainable params: 428,354" in text
    assert "L1 activity penalty 1e-06 on the codes (output of encoder.4, 50 units)" in text
    # the note sits right under the layer that makes the codes
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("encoder.4 (ReLU)"))
    assert "L1 activity penalty 1e-06" in lines[i + 1]
    assert text != summaries["stacked"]


def test_the_sigmoid_output_is_a_row_and_a_linear_output_says_so():
    lines = model_summary(create_model("stacked")).splitlines()
    row = next(line for line in lines if line.startswith("output activation"))
    assert row.split() == ["output", "activation:", "Sigmoid", "(None,", "1,", "28,", "28)", "0"]
    linear = model_summary(create_model("conv-transposed", output="linear", loss="mse"))
    assert "output activation: linear (none)" in linear
    assert "Loss: mean squared error." in linear


def test_sparse_constraints_and_the_vae_kl_term_appear(summaries):
    kl = " ".join(summaries["sparse-kl"].split())  # notes may wrap at 88 columns
    assert "KL sparsity penalty rho 0.05, beta 0.01 on the codes (output of encoder.2, 512 units)" in kl
    ks = " ".join(model_summary(create_model("k-sparse", k=20, alpha=2.0, k_start=100, tied=True)).split())
    assert "keep the k = 20 largest codes per sample" in ks and "alpha·k = 40" in ks
    assert "k_start 100" in ks and "tied weights: yes" in ks
    assert "decoder.0 (TiedLinear)" in ks and "transpose of encoder.1.weight" in ks
    vae = " ".join(summaries["vae"].split())
    assert "KL(q(z|x) || N(0, I))" in vae
    assert "encoder.3.log_var (Linear)" in vae  # not called by forward, still listed
    assert "Total params: 404,244" in vae


def test_summary_leaves_the_model_in_its_mode():
    model = create_model("k-sparse")
    model.train()
    model_summary(model)
    assert model.training
    model.eval()
    model_summary(model)
    assert not model.training


def test_training_line_reads_like_the_assignment():
    from aelab.train import EarlyStopping, TrainConfig

    cfg = TrainConfig(epochs=50, batch_size=32, optimizer="nadam", learning_rate=1e-4,
                      early_stopping=EarlyStopping(monitor="val_loss", patience=5, min_delta=0.01))
    assert training_line(cfg, create_model("stacked")) == (
        "Training: Nadam, learning rate 1e-04, loss binary cross-entropy, batch 32, up to 50 "
        "epochs, early stopping on val_loss (patience 5, min_delta 0.01)")
    plain = TrainConfig(epochs=50, batch_size=256, optimizer="adadelta-original", input_noise=0.5)
    assert training_line(plain, "sse") == (
        "Training: Adadelta (original Keras default), learning rate 1 (the optimizer's default), "
        "loss sum of squared errors, batch 256, 50 epochs, no early stopping, inputs + "
        "0.5·N(0, 1) noise, clipped to [0, 1]")


@pytest.mark.parametrize("value, text", [(1e-6, "1e-06"), (1e-4, "1e-04"), (2.5e-5, "2.5e-05"),
                                          (0.001, "0.001"), (0.05, "0.05"), (1.0, "1"),
                                          (-0.0, "0"), (0.0, "0"), (428354.0, "428354"), (1.23456789e-5, "1.2346e-05")])
def test_numbers_are_written_cleanly(value, text):
    assert number(value) == text


def test_a_models_training_line_shows_every_value_its_runs_sweep():
    """fashion-shoes sweeps batch 32 and 256: the summary of each model says so, not "batch 32"."""
    from aelab.config import load_study

    study = load_study("fashion-shoes")
    line = training_line([s.train for s in study.runs if s.label == "sparse"], "bce")
    assert "batch 32 or 256 (by run)" in line and "up to 50 epochs" in line
    assert line.count("batch") == 1 and "learning rate 1e-04," in line  # shared values once


def test_the_runner_prints_the_swept_values_under_each_model(tmp_path):
    from aelab.config import load_study
    from aelab.runner import _console, _Session

    (tmp_path / "sweep.toml").write_text(
        'name = "sweep"\n[data]\ndataset = "mnist-5k"\nlimit = 200\n[train]\nepochs = 2\n'
        'batch_size = [32, 256]\nlearning_rate = [1e-3, 1e-2]\n'
        '[[models]]\nname = "a"\nmodel = "stacked"\nparams = { hidden = [16, 4] }\n')
    study = load_study(str(tmp_path / "sweep.toml"))
    session = _Session(study, _console(True), True, None, (), None, ())
    session.prepare()
    line = session.summaries["a"].splitlines()[-1]
    assert "learning rate 0.001 or 0.01 (by run)" in line and "batch 32 or 256 (by run)" in line
