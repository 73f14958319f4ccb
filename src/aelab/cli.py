"""The ``aelab`` command: parses arguments and calls the Python API, nothing more.

Heavy modules (torch, matplotlib) are imported inside the commands so ``aelab --help`` is instant.
Every AelabError becomes one sentence on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from . import executors  # noqa: F401  (registers the executors that --executor offers)
from .registry import EXECUTORS

# Plain click help (no rich rendering): `aelab --help` answers in 0.1 s instead of 0.2.
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None, help="Autoencoder experiments in one command.")


def _fail(err: Exception) -> None:
    # One line, whatever the message quotes from the user's files.
    typer.echo("aelab: " + " ".join(str(err).splitlines()), err=True)
    raise typer.Exit(getattr(err, "exit_code", 2))


class Interrupted(BaseException):
    """SIGTERM or SIGHUP (``timeout``, Slurm, ``docker stop``, a closed terminal): stop like Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum, frame):
    raise Interrupted(signum)


def _headless_plots() -> None:
    """Figures go to files: the program, not ``import aelab``, chooses matplotlib's backend."""
    import matplotlib

    matplotlib.use("Agg")


@app.command()
def run(
    study: str | None = typer.Argument(None, metavar="STUDY", help="A built-in study name (see `aelab list`) or a .toml file."),
    out: Path | None = typer.Option(None, metavar="DIR", help="Run folder (default runs/<study>-<timestamp>)."),
    resume: Path | None = typer.Option(None, metavar="DIR", help="Continue an interrupted study: its <out>.incomplete folder."),
    seed: int | None = typer.Option(None, metavar="N", help="Override the study's seed."),
    quick: bool = typer.Option(False, "--quick", help="Reduced budget from the study's [quick] table.",
                               show_default=False),
    data_dir: Path | None = typer.Option(None, metavar="DIR", help="Folder with the IDX files (else AELAB_DATA, cache, ...)."),
    set_: list[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="Override a setting, e.g. --set train.epochs=3."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors and the run folder.",
                               show_default=False),
    jobs: str = typer.Option("1", metavar="N|auto", help="Runs trained at a time, each in its own process, or 'auto'."),
    threads: int | None = typer.Option(None, min=1, metavar="N", help="PyTorch CPU threads per run (default: the "
                                       "cores shared out among --jobs; use fewer when other jobs share "
                                       "the machine)."),
    executor: str = typer.Option("local", metavar="|".join(EXECUTORS.names()), help="; ".join(
        f"{e.name}: {e.info.summary}" for e in EXECUTORS.entries()) + "."),
    ray_address: str | None = typer.Option(None, metavar="HOST:PORT", help="Join this Ray cluster (default: start a local Ray)."),
    track: list[str] = typer.Option([], metavar="mlflow|tensorboard", help="Also log the study live to a tracker: mlflow or tensorboard."),
    track_uri: str | None = typer.Option(None, metavar="URI", help="MLflow tracking URI or TensorBoard folder."),
):
    """Run a study: train its models, evaluate, write the run folder and report."""
    import signal

    from .errors import AelabError

    _check_run_options(study, resume, jobs, executor, bool(set_ or seed is not None or quick or out is not None))
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, _on_signal)
    folder = None
    try:
        _headless_plots()
        from .runner import resume_study, run_study
        from .track import check_tracker

        for kind in track:
            check_tracker(kind)
        options = dict(data_dir=data_dir, quiet=quiet, jobs=jobs if jobs == "auto" else int(jobs),
                       threads=threads, executor=executor, ray_address=ray_address, track=tuple(track),
                       track_uri=track_uri)
        if resume is not None:
            folder = resume_study(resume, **options)
        else:
            from .config import load_study

            spec = load_study(study, quick=quick, overrides=set_, seed=seed)
            folder = run_study(spec, out=out, **options)  # checks --out before loading the data
    except AelabError as err:
        _fail(err)
    except (KeyboardInterrupt, Interrupted) as err:
        name = signal.Signals(err.signum).name if isinstance(err, Interrupted) else "Ctrl-C"
        code = 128 + (err.signum if isinstance(err, Interrupted) else signal.SIGINT)
        typer.echo(f"aelab: stopped by {name}; {_resume_hint(err)}", err=True)
        raise typer.Exit(code) from None
    if quiet:
        typer.echo(str(folder))


def _check_run_options(study, resume, jobs: str, executor: str, changes: bool) -> None:
    """What `run` can tell from its options alone; ``changes``: --set, --seed, --quick or --out given."""
    from .errors import AelabError

    if (study is None) == (resume is None):
        _fail(AelabError("Give a study to run, or --resume DIR to continue an interrupted one (not both)."))
    if jobs != "auto" and (not jobs.isdigit() or int(jobs) < 1):
        _fail(AelabError(f"--jobs {jobs!r} is not allowed; give a number of runs at a time (1, 2, ...) or 'auto'."))
    if executor not in EXECUTORS:
        _fail(AelabError(f"--executor {executor!r} is not allowed; use one of: {', '.join(EXECUTORS.names())}."))
    if resume is not None and changes:
        _fail(AelabError("--resume continues a study as it was started; leave out --set, --seed, "
                         "--quick and --out."))


def _resume_hint(err: BaseException) -> str:
    """The exact command that continues the interrupted study (the runner names its folder)."""
    folder = getattr(err, "run_folder", None)
    if folder is None:
        return "nothing had been written yet."
    return f"finished runs are kept; continue with: aelab run --resume {folder}"


@app.command("list")
def list_():
    """List the built-in studies, one line each, and the registered models."""
    from rich.console import Console
    from rich.table import Table

    from .config import builtin_studies, read_study_file
    from .docs._studies import headline

    table = Table(title="Built-in studies (`aelab show NAME` describes one)", title_justify="left")
    names = builtin_studies()
    table.add_column("study", no_wrap=True, min_width=max(map(len, names), default=5))
    table.add_column("what it is", no_wrap=True, overflow="ellipsis")
    for name in names:
        table.add_row(name, headline(str(read_study_file(name)[0].get("description", ""))))
    console = Console()
    console.print(table)
    from .models import list_models

    console.print("Models: " + ", ".join(list_models()))


@app.command()
def show(
    study: str = typer.Argument(..., metavar="STUDY", help="A built-in study name or a .toml file."),
    quick: bool = typer.Option(False, "--quick", help="Apply the [quick] table.", show_default=False),
    set_: list[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="Override a setting, e.g. --set train.epochs=3."),
    seed: int | None = typer.Option(None, metavar="N", help="Override the study's seed."),
):
    """Check a study as `run` would, print its file and the runs it expands to."""
    from .errors import AelabError

    try:
        from .config import load_study

        spec = load_study(study, quick=quick, overrides=set_, seed=seed)  # every check `run` makes
        typer.echo(Path(spec.source).read_text(encoding="utf-8-sig"))
        if spec.search is not None:  # its runs are the trials, sampled as it runs
            typer.echo("\n".join(spec.search.describe()))
            return
        typer.echo(f"Runs ({len(spec.runs)}):")
        for r in spec.runs:
            t = r.train
            typer.echo(f"  {r.name}: model {r.model}, epochs {t.epochs}, batch {t.batch_size}, "
                       f"{t.optimizer} lr {t.learning_rate if t.learning_rate is not None else 'default'}, "
                       f"seed {t.seed}")
        _echo_stacks(spec.runs)
    except AelabError as err:
        _fail(err)


def _echo_stacks(runs) -> None:
    """The runs that train together as one stacked model (train.vectorize)."""
    from .plan import stack_groups

    groups = [g for g in stack_groups(runs) if len(g) > 1]
    if groups:
        typer.echo(f"Stacked groups ({len(groups)}), each trained as one model when train.vectorize is on, "
                   "or auto and a timing of a few steps here finds it faster:")
    for g in groups:
        modes = sorted({r.train.vectorize for r in g})
        typer.echo(f"  {len(g)} runs ({'/'.join(modes)}): {', '.join(r.name for r in g)}")


@app.command()
def report(run_dir: Path = typer.Argument(..., metavar="DIR", help="A run folder (finished or .incomplete).")):
    """Rebuild report.html of a run folder from its files, without retraining."""
    from .errors import AelabError

    try:
        from .report.html import write_report

        typer.echo(str(write_report(run_dir)))
    except AelabError as err:
        _fail(err)


@app.command()
def compare(
    run_dirs: list[Path] = typer.Argument(..., metavar="DIR...", help="Run folders to compare."),
    out: Path | None = typer.Option(None, metavar="DIR", help=(
        "Also write compare.html, compare.csv and loss_curves.png into this folder (else nothing is written).")),
):
    """Compare the runs of several run folders: a table in the terminal; with --out, an HTML page,
    overlaid loss curves and a CSV."""
    from .errors import AelabError

    try:
        from rich.console import Console

        from .report.html import compare_runs, comparison_table

        result = compare_runs(run_dirs, out)
        console = Console()
        console.print(comparison_table(result))
        if result.aggregates:
            from .report.console import aggregates_table
            from .report.html import difference_line

            console.print(aggregates_table(result.aggregates))
            for d in result.differences:
                console.print(difference_line(d), markup=False, highlight=False)
        if result.out is not None:
            console.print(f"Written: {result.out}/compare.html, compare.csv, loss_curves.png", markup=False,
                          highlight=False)
    except AelabError as err:
        _fail(err)


@app.command()
def data(
    data_dir: Path | None = typer.Option(None, metavar="DIR", help="Look for the IDX files only in this folder, as `run` does."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Check the files' SHA-256 digests."),
):
    """Show which datasets are here (and where), how to get the others, and verify their files."""
    from .errors import AelabError

    try:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        from .datasets import dataset_status

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


@app.command()
def docs(topic: str | None = typer.Argument(
        None, metavar="TOPIC", help="A section (study, data, train, models, steps, quick, sweeps, overrides, extends, "
                   "datasets) or a model, step or dataset name; everything when left out.")):
    """Print the study-file reference: every key, model, step and dataset, generated from the code."""
    from .errors import AelabError

    try:
        from .docs import reference

        text = reference(topic)
    except AelabError as err:
        _fail(err)
    if sys.stdout.isatty():  # rendered for a reader; plain Markdown for a pipe or a file
        from rich.console import Console
        from rich.markdown import Markdown

        Console().print(Markdown(text))
    else:
        typer.echo(text, nl=False)


def main() -> None:
    app(prog_name="aelab")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
