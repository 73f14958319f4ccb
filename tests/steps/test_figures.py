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
