"""The study-file reference: complete, true to the loader, and shipped up to date."""

import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import aelab.datasets  # noqa: F401  (register the datasets)
from aelab import docs
from aelab.cli import app
from aelab.config import DataConfig, ModelEntry, StudyFile, load_study
from aelab.errors import AelabError
from aelab.params import describe
from aelab.registry import DATASETS, MODELS, STEPS
from aelab.train import EarlyStopping, TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SHIPPED = Path(__file__).resolve().parents[1] / "docs" / "study-file.md"


@pytest.fixture(scope="module")
def full():
    return docs.reference()


def section(text: str, heading: str) -> str:
    """The text under a Markdown heading, up to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    start = text.index(heading + "\n")
    rest = text[start + len(heading) + 1:]
    end = re.search(rf"^#{{1,{len(level)}}} ", rest, flags=re.M)
    return rest[: end.start()] if end else rest


def keys(text: str) -> list[str]:
    return re.findall(r"^- `([A-Za-z0-9_]+)` \(", text, flags=re.M)


def test_shipped_reference_is_up_to_date(full):
    assert SHIPPED.is_file(), f"docs/study-file.md is missing; create it with `{docs.REFRESH}`."
    assert SHIPPED.read_text(encoding="utf-8") == full, (
        f"docs/study-file.md is out of date with the code; refresh it with `{docs.REFRESH}`.")


def test_every_declared_key_is_documented_in_its_section(full):
    expect = {
        "## Top-level keys": [p.name for p in describe(StudyFile)] + ["extends", "quick"],
        "## [data]": [p.name for p in describe(DataConfig)],
        "## [train]": [p.name for p in describe(TrainConfig)],
        "### [train.early_stopping]": [p.name for p in describe(EarlyStopping)],
        "## [[models]]": [p.name for p in describe(ModelEntry)],
    }
    nested = {"## [train]": expect["### [train.early_stopping]"]}
    for heading, names in expect.items():
        found = keys(section(full, heading).split("\n### ")[0])  # not the models' own sections
        assert set(names) <= set(found), heading
        assert set(found) <= set(names) | set(nested.get(heading, [])), heading  # nothing undeclared
    assert docs.MISSING not in full, "a setting has no description; declare one in its annotation"


def test_every_model_step_and_dataset_has_its_section_with_all_parameters(full):
    for registry, parent in ((MODELS, "## [[models]]"), (STEPS, "## [[steps]]")):
        part = section(full, parent)
        for entry in registry.entries():
            own = section(part, f"### {entry.name}")
            assert keys(own) == [p.name for p in describe(entry.fn)], entry.name
            first_line = (entry.doc.split("``")[0])[:30]
            assert first_line in own, entry.name  # the factory's docstring
    datasets = section(full, "## Datasets")
    for entry in DATASETS.entries():
        own = section(datasets, f"### {entry.name}")
        assert entry.info.description in own
        assert ", ".join(entry.info.classes) in own
        assert ("train 60,000 / test 10,000" in own) == bool(entry.info.official_split)


def test_a_narrowed_description_wins_over_the_shared_one():
    # stacked's code_activation narrows the shared Activation type's "activation of the hidden layers"
    text = docs.reference("stacked")
    assert "- `code_activation` (" in text and "activation of the code layer" in text


def test_every_toml_example_loads(tmp_path, full):
    """Each example is a study or a part of one: on top of fashion-shoes, it must load."""
    blocks = re.findall(r"```toml\n(.*?)```", full, flags=re.S)
    assert len(blocks) >= 8
    for i, block in enumerate(blocks):
        table = tomllib.loads(block)
        if "name" not in table:
            head = 'extends = "fashion-shoes"\n'
            if "models" in table and "steps" not in table:
                head += "steps = []\n"  # fashion-shoes' steps name its own runs
            block = head + block
        path = tmp_path / f"example{i}.toml"
        path.write_text(block)
        study = load_study(str(path), quick="quick" in table)
        assert study.runs or study.search is not None


def test_sweep_and_override_examples_do_what_the_reference_says(full):
    sweeps = section(full, "## Sweeps")
    for name in ("ksparse-k25-seed1", "stacked-hidden256x50-seed0"):
        assert f"`{name}`" in sweeps
    overrides = section(full, "## Overrides")
    examples = re.findall(r"`([a-z0-9_.<>]+=[^`]+)`", overrides)
    assert len(examples) >= 5
    sets = [e.replace("<name>", "sparse").replace("<kind>", "reconstructions") for e in examples]
    # sparse now trains at batch 64 only, so its bs256 run is gone from the reconstructions step
    study = load_study("fashion-shoes", overrides=[*sets, 'steps.reconstructions.runs=["sparse"]'])
    sparse = next(m for m in study.models if m.name == "sparse")
    assert len(study.runs) == (2 + 1) * 3  # stacked at 2 batch sizes, sparse at 1, seed=[0,1,2]
    assert sparse.params["activity_l1"] == 1e-5 and sparse.train == {"batch_size": 64}
    assert next(s for s in study.steps if s.kind == "reconstructions").params["n"] == 5


def test_topics_print_their_part_only():
    models = docs.reference("models")
    assert all(f"### {n}" in models for n in MODELS.names())
    assert "### loss_curves" not in models and "## [data]" not in models
    steps = docs.reference("steps")
    assert all(f"### {n}" in steps for n in STEPS.names()) and "### stacked" not in steps
    assert "### fashion-mnist" in docs.reference("data") or "fashion-mnist" in docs.reference("data")
    assert "### [train.early_stopping]" in docs.reference("train")
    one = docs.reference("sparsity")
    assert one.startswith("## Step") and "`threshold`" in one and "### stacked" not in one
    assert "Sandal" in docs.reference("Fashion-MNIST")


def test_unknown_topic_is_one_sentence_listing_the_topics():
    with pytest.raises(AelabError) as err:
        docs.reference("modles")
    text = str(err.value)
    assert "\n" not in text and text.count(". ") == 0 and text.endswith(".")
    for topic in (*docs.SECTIONS, "stacked", "observations", "fashion-mnist"):
        assert topic in text


def test_cli_docs_prints_plain_markdown_when_piped_and_exits_2_on_unknown():
    runner = CliRunner()
    out = runner.invoke(app, ["docs", "train"])
    assert out.exit_code == 0 and out.stdout == docs.reference("train")
    bad = runner.invoke(app, ["docs", "nonsense"])
    assert bad.exit_code == 2 and "Unknown docs topic 'nonsense'" in bad.output


def test_the_reference_opens_with_the_smallest_study_that_runs_then_grows_it(full):
    """Issue 21: it opened with the complete fashion-shoes study, which a first study then copied."""
    blocks = re.findall(r"```toml\n(.*?)```", section(full, "## Writing a study"), flags=re.S)
    tables = [tomllib.loads(b) for b in blocks]
    assert len(tables) == 3 and set(tables[0]) == {"name", "data", "models"}
    assert len(blocks[0].strip().splitlines()) <= 8
    assert all(set(a) <= set(b) for a, b in zip(tables, tables[1:]))  # each grows the one before
    assert "fashion-shoes" not in full.split("## Writing a study")[0]
    assert 'dataset = "fashion-mnist"' not in section(full, "## Writing a study")


def test_python_m_aelab_docs_prints_a_topic():
    import subprocess

    out = subprocess.run([sys.executable, "-m", "aelab.docs", "train"], capture_output=True, text=True, check=True)
    assert out.stdout == docs.reference("train")


def test_a_study_headline_is_its_first_clause_without_asides():
    from aelab.docs._studies import headline

    assert headline("Stacked vs sparse autoencoder on Fashion-MNIST (Sandal, Sneaker (7)), each "
                    "trained with batch sizes 32 and 256.") == "Stacked vs sparse autoencoder on Fashion-MNIST"
    assert headline("Sparse codes: L1, KL. About 5 minutes on 2 CPU cores.") == "Sparse codes"
