"""The ``aelab`` command: parses arguments and calls the Python API, nothing more.

Heavy modules (torch, matplotlib) are imported inside the commands so ``aelab --help`` is instant.
Every AelabError becomes one sentence on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Autoencoder experiments in one command.")


def _fail(err: Exception) -> None:
    typer.echo(f"aelab: {err}", err=True)
    raise typer.Exit(2)


@app.command()
def run(
    study: str = typer.Argument(..., help="A built-in study name (see `aelab list`) or a .toml file."),
    out: Path | None = typer.Option(None, help="Run folder (default runs/<study>-<timestamp>)."),
    seed: int | None = typer.Option(None, help="Override the study's seed."),
    quick: bool = typer.Option(False, "--quick", help="Reduced budget from the study's [quick] table."),
    data_dir: Path | None = typer.Option(None, help="Folder with the IDX files (else AELAB_DATA, cache, ...)."),
    set_: list[str] = typer.Option([], "--set", help="Override a setting, e.g. --set train.epochs=3."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors and the run folder."),
    track: list[str] = typer.Option([], help="Also log the run to a tracker: mlflow or tensorboard."),
    track_uri: str | None = typer.Option(None, help="MLflow tracking URI or TensorBoard folder."),
    threads: int | None = typer.Option(None, min=1, help="CPU threads for PyTorch (default: one per core; "
                                       "use fewer when other jobs share the machine)."),
):
    """Run a study: train its models, evaluate, write the run folder and report."""
    from .errors import AelabError

    try:
        if threads:
            import torch

            torch.set_num_threads(threads)
        from .study import load_study, run_study
        from .track import check_tracker, track_run

        for kind in track:
            check_tracker(kind)
        spec = load_study(study, quick=quick, overrides=set_, seed=seed)
        folder = run_study(spec, out=out, data_dir=data_dir, quiet=quiet)
        for kind in track:
            where = track_run(kind, folder, track_uri)
            if not quiet:
                typer.echo(f"Logged to {kind}: {where}")
    except AelabError as err:
        _fail(err)
    except KeyboardInterrupt:
        typer.echo("aelab: interrupted; finished runs are kept in the .incomplete folder.", err=True)
        raise typer.Exit(130) from None
    if quiet:
        typer.echo(str(folder))


@app.command("list")
def list_():
    """List the built-in studies and the registered models."""
    from rich.console import Console
    from rich.table import Table

    from .study import builtin_studies, read_study_file

    table = Table(title="Built-in studies", title_justify="left")
    table.add_column("study")
    table.add_column("description")
    for name in builtin_studies():
        table.add_row(name, read_study_file(name)[0].get("description", ""))
    console = Console()
    console.print(table)
    from .models import list_models

    console.print("Models: " + ", ".join(list_models()))


@app.command()
def show(study: str = typer.Argument(..., help="A built-in study name or a .toml file.")):
    """Print a study file and the runs it expands to."""
    from .errors import AelabError

    try:
        from .study import expand_runs, load_study, read_study_file

        spec = load_study(study)
        _, source = read_study_file(study)
        typer.echo(Path(source).read_text())
        typer.echo("Runs:")
        for r in expand_runs(spec):
            t = r.train
            typer.echo(f"  {r.name}: model {r.model}, epochs {t.epochs}, batch {t.batch_size}, "
                       f"{t.optimizer} lr {t.learning_rate if t.learning_rate is not None else 'default'}")
    except AelabError as err:
        _fail(err)


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A finished run folder.")):
    """Rebuild report.html of a run folder from its files, without retraining."""
    from .errors import AelabError

    try:
        from .report.html import write_report

        typer.echo(str(write_report(run_dir)))
    except AelabError as err:
        _fail(err)


@app.command()
def compare(
    run_dirs: list[Path] = typer.Argument(..., help="Run folders to compare."),
    out: Path | None = typer.Option(None, help="Output folder (default compare-<timestamp>/)."),
):
    """Compare the runs of several run folders: a table, overlaid loss curves, HTML and CSV."""
    from .errors import AelabError

    try:
        from rich.console import Console

        from .report.html import compare_runs, comparison_table

        result = compare_runs(run_dirs, out)
        console = Console()
        console.print(comparison_table(result))
        console.print(f"Written: {result.out}/compare.html, compare.csv, loss_curves.png", highlight=False)
    except AelabError as err:
        _fail(err)


@app.command()
def data(
    data_dir: Path | None = typer.Option(None, help="Look for the IDX files only in this folder, as `run` does."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Check the files' SHA-256 digests."),
):
    """Show which datasets are here (and where), how to get the others, and verify their files."""
    from .errors import AelabError

    try:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        from .data import dataset_status

        table = Table(title="Datasets", title_justify="left")
        for column in ("dataset", "here", "source, or how to get it", "checksums"):
            table.add_column(column)
        for st in dataset_status(data_dir=data_dir, verify=verify):
            check = st.check or "-"
            style = "red" if check.startswith("checksum mismatch") else "green" if check == "verified" else ""
            table.add_row(st.name, "yes" if st.found else "no", escape(st.where),
                          f"[{style}]{escape(check)}[/]" if style else escape(check))
        Console().print(table)
    except AelabError as err:
        _fail(err)


def main() -> None:
    app(prog_name="aelab")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
