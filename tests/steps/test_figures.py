"""The figure steps: each draws the figures of the runs its default selection picks."""

from __future__ import annotations


def test_each_figure_step_draws_for_the_runs_it_picks(every_step):
    runs = ("ks-k4", "ks-k8", "vae", "conv")
    assert "loss_curves" in every_step.figures
    assert {f"reconstructions-{r}" for r in runs} <= every_step.figures
    # Only conv trained with input noise; conv and vq have image-shaped codes; latent_space picks
    # only the plain vae.
    assert {f for f in every_step.figures if f.startswith("denoising-")} == {"denoising-conv"}
    assert {f for f in every_step.figures if f.startswith("codes-")} == {"codes-conv", "codes-vq"}
    assert {f for f in every_step.figures if f.startswith(("latent-", "manifold-"))} == {
        "latent-vae", "manifold-vae"}
    files = {p.stem for p in (every_step.folder / "figures").iterdir()}
    assert every_step.figures <= files


def test_loss_curves_select_runs_as_reconstructions_do(tmp_path):
    """Issue 21: `runs` on loss_curves was "Unknown key 'steps[0].runs'"."""
    from types import SimpleNamespace

    from aelab.config import load_study
    from aelab.records import RunRecord
    from aelab.registry import STEPS
    from aelab.steps import StudyContext

    (tmp_path / "s.toml").write_text(
        'name = "s"\n[data]\ndataset = "digits"\n[train]\nepochs = 1\nbatch_size = [32, 64]\n'
        '[[models]]\nname = "a"\nmodel = "stacked"\n[[models]]\nname = "b"\nmodel = "stacked"\n'
        '[[steps]]\nkind = "loss_curves"\nruns = ["a-bs64", "b"]\n')
    study = load_study(str(tmp_path / "s.toml"))
    assert study.steps[0].params["runs"] == ["a-bs64", "b"]
    history = [{"epoch": 1, "train_loss": 0.3, "val_loss": 0.31}, {"epoch": 2, "train_loss": 0.2, "val_loss": 0.21}]
    records = [RunRecord.from_json({"name": s.name, "model": "stacked", "label": s.label, "sweep": dict(s.sweep),
                                    "status": "completed", "history": history}) for s in study.runs]
    saved = {}
    ctx = SimpleNamespace(records=records, study=study, save_figure=lambda n, fig, c="": saved.setdefault(n, fig))
    ctx.selected = lambda runs=None: StudyContext.selected(ctx, runs)
    STEPS.get("loss_curves").fn(ctx, **study.steps[0].params)
    fig = saved["loss_curves"]
    panels = {ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()}
    assert panels == {"a", "b"}
    a = next(ax for ax in fig.axes if ax.get_title() == "a")
    assert len([line for line in a.get_lines() if line.get_linestyle() == "--"]) == 1  # a-bs64 only
