"""The HTML report and run comparison, checked in a real headless Chromium where one is installed."""

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")

# Appended to a copy of the page: after the load event it writes what the browser saw into the
# DOM, which --dump-dom then prints. The report itself stays script-free.
CHECK_SCRIPT = """<script>
window.addEventListener("load", () => {
  document.querySelectorAll("details").forEach(d => { d.open = true; });  // measure hidden text too
  const imgs = Array.from(document.images);
  const vw = window.innerWidth;
  // Wider than the window: any element reaching past its right edge, except inside a box that
  // scrolls on its own (.scroll, a wide table's container), which must itself fit.
  const wide = Array.from(document.body.querySelectorAll("*"))
    .filter(e => !(e.parentElement && e.parentElement.closest(".scroll")))
    .filter(e => e.getBoundingClientRect().right > vw + 0.5)
    .map(e => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`);
  // Text cut off inside its own box: a <pre> whose content is wider than the box.
  const cut = Array.from(document.querySelectorAll("pre"))
    .filter(p => p.scrollWidth > p.clientWidth + 1).map(p => p.textContent.slice(0, 60));
  const badge = document.getElementById("quick-badge");
  const table = document.querySelector("table#results");
  const box = table ? table.closest(".scroll") : null;
  const summary = document.getElementById("summary-body");
  const out = document.createElement("pre");
  out.id = "aelab-check";
  out.textContent = JSON.stringify({
    images: imgs.length,
    loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
    rows: document.querySelectorAll("#results tbody tr").length,
    external: Array.from(document.querySelectorAll("[src],[href]"))
      .map(e => e.getAttribute("src") || e.getAttribute("href"))
      .filter(u => !u.startsWith("data:") && !u.startsWith("#")),
    innerWidth: vw,
    scrollWidth: document.documentElement.scrollWidth,
    wide: wide,
    cut: cut,
    figures: document.querySelectorAll("figure").length,
    captions: Array.from(document.querySelectorAll("figure > figcaption")).map(c => c.textContent.trim()),
    badge: badge ? {text: badge.textContent.trim(), width: badge.getBoundingClientRect().width} : null,
    resultsOverflow: box ? box.scrollWidth - box.clientWidth : null,
    rowHeights: Object.fromEntries(Array.from(document.querySelectorAll("#results tbody tr"))
      .map(r => [r.cells[0].textContent, r.getBoundingClientRect().height])),
    summaryTags: summary ? Array.from(summary.querySelectorAll("*")).map(e => e.tagName.toLowerCase()) : [],
    preprocessing: (document.getElementById("preprocessing") || {}).textContent || null,
  });
  document.body.appendChild(out);
});
</script>
"""


def chromium(page: Path, profile: Path, *args: str) -> str:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", *args, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=True).stdout


def browser_check(page: Path, tmp_path: Path, width: int = 1280) -> dict:
    """Open ``page`` in headless Chromium, ``width`` pixels wide, and return what CHECK_SCRIPT
    recorded."""
    probe = page.with_name(page.stem + "-check.html")
    probe.write_text(page.read_text().replace("</body>", CHECK_SCRIPT + "</body>"))
    dom = chromium(probe, tmp_path / "profile-dom", f"--window-size={width},900",
                   "--virtual-time-budget=10000", "--dump-dom")
    found = re.search(r'<pre id="aelab-check">(.*?)</pre>', dom, re.S)
    assert found, "the check script did not run in the browser"
    seen = json.loads(html.unescape(found.group(1)))
    assert seen["innerWidth"] == width, f"the window is {seen['innerWidth']} px, not {width}"
    return seen


def assert_fits(seen: dict) -> None:
    """Nothing wider than the window, no text cut inside its box, one caption per figure."""
    assert seen["scrollWidth"] <= seen["innerWidth"], f"page scrolls sideways: {seen['scrollWidth']} px"
    assert seen["wide"] == [], f"wider than the window: {seen['wide']}"
    assert seen["cut"] == [], f"text cut off inside its box: {seen['cut']}"
    assert len(seen["captions"]) == seen["figures"] and all(seen["captions"])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One real quick study run (~15 s) shared by the tests of this module."""
    from aelab import load_study, run_study

    return run_study(load_study("quickstart", quick=True), out=tmp_path_factory.mktemp("r") / "run",
                     quiet=True)


@pytest.fixture(scope="module")
def metrics(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


def test_run_writes_a_self_contained_report(run_dir, metrics):
    page = (run_dir / "report.html").read_text()
    for section in ("results", "summary", "figures", "data", "models", "settings", "environment"):
        assert f'id="{section}"' in page
    figures = sorted(p.stem for p in (run_dir / "figures").glob("*.png"))
    assert figures and page.count('src="data:image/png;base64,') == len(figures)
    assert not re.search(r'(src|href)="(?!data:|#)', page), "the page must not load anything"
    text = html.unescape(page)
    # every summary line is on the page, as a heading, a list item or a table row
    cells = re.sub(r"<[^>]+>", " ", text)
    assert all(word in cells for line in metrics["summary"] for word in line.lstrip("- ").split())
    assert metrics["environment"]["torch"] in text
    assert 'name = "quickstart"' in text  # study.toml
    assert "Total params" in text  # model summaries
    assert page.count('<tr class="run') == len(metrics["runs"])


def test_report_lists_extra_metrics_generically_and_escapes_text(run_dir, metrics, tmp_path):
    from aelab.report.html import render_report

    m = json.loads(json.dumps(metrics))
    m["description"] = "<script>alert(1)</script> & co"
    m["runs"][0].update(probe_accuracy=0.875, verdict="<b>better</b>", per_class={"0": 0.9})
    m["summary"].append("verdict: <img src=x onerror=alert(1)>")
    page = render_report(run_dir, m)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "<img src=x" not in page
    assert "<th>probe_accuracy</th>" in page and "0.875" in page
    assert "&lt;b&gt;better&lt;/b&gt;" in page
    assert "per_class" in page  # nested values go into the run's details


def test_cli_report_rebuilds_the_page(run_dir, tmp_path):
    from typer.testing import CliRunner

    from aelab.cli import app

    copy = shutil.copytree(run_dir, tmp_path / "copy")
    (copy / "report.html").unlink()
    result = CliRunner().invoke(app, ["report", str(copy)])
    assert result.exit_code == 0, result.output
    assert (copy / "report.html").read_text() == (run_dir / "report.html").read_text()
    assert CliRunner().invoke(app, ["report", str(tmp_path / "nowhere")]).exit_code == 2


def test_cli_compare_writes_table_curves_and_csv(run_dir, metrics, tmp_path):
    from typer.testing import CliRunner

    from aelab.cli import app

    other = shutil.copytree(run_dir, tmp_path / "other")
    out = tmp_path / "cmp"
    result = CliRunner().invoke(app, ["compare", str(run_dir), str(other), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Comparison: run" in result.output and "Comparison: other" in result.output
    rows = (out / "compare.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * len(metrics["runs"])
    assert rows[0].startswith("name,") and "val_loss" in rows[0]
    assert (out / "loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "compare.html").read_text()
    assert page.count('<tr class="run">') == 2 * len(metrics["runs"])


@needs_chromium
def test_report_renders_in_a_real_browser(run_dir, metrics, tmp_path):
    page = tmp_path / "report.html"
    shutil.copy(run_dir / "report.html", page)
    seen = browser_check(page, tmp_path)
    n_figures = len(list((run_dir / "figures").glob("*.png")))
    assert seen["images"] == n_figures > 0
    assert seen["loaded"] == seen["images"], f"only {seen['loaded']} of {seen['images']} images loaded"
    assert seen["rows"] == len(metrics["runs"])
    assert seen["external"] == []
    assert_fits(seen)
    shot = tmp_path / "report.png"
    chromium(page, tmp_path / "profile-shot", "--window-size=1200,2400", "--hide-scrollbars",
             f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    print(f"screenshot: {shot}")


@needs_chromium
def test_comparison_renders_in_a_real_browser(run_dir, metrics, tmp_path):
    from aelab.report.html import compare_runs

    result = compare_runs([run_dir], tmp_path / "cmp")
    seen = browser_check(result.out / "compare.html", tmp_path)
    assert seen["images"] == seen["loaded"] == 1
    assert seen["rows"] == len(metrics["runs"])
    assert_fits(seen)


def test_status_spinner_only_on_a_terminal():
    import io

    from rich.console import Console

    from aelab.report.console import status

    for console in (Console(file=io.StringIO(), record=True), Console(quiet=True), None):
        with status(console, "Loading data ..."):
            pass
    term = Console(file=io.StringIO(), force_terminal=True)
    with status(term, "Loading data ..."):
        pass
    assert "Loading data" in term.file.getvalue()


# ---------------------------------------------------------------- a synthetic run folder
# Written by hand, so these tests check the report's layout and text without training anything,
# with the long names, lines and numbers that break layouts.

LONG = "fashion-shoes-with-a-very-long-run-name-that-has-no-spaces-at-all-" * 2


def _history(n: int, start: float = 0.3) -> list[dict]:
    return [{"epoch": i, "train_loss": 0.21 + (start - 0.21) / i, "train_recon": 0.2,
             "train_penalty": 0.0, "val_loss": 0.22 + (start - 0.21) / i, "seconds": 0.5}
            for i in range(1, n + 1)]


def _entry(name: str, label: str, batch: int, epochs: int) -> dict:
    return {"name": name, "model": "stacked", "label": label, "params": {"hidden": [256, 50]},
            "sweep": {"batch_size": batch}, "batch_size": batch, "optimizer": "nadam",
            "learning_rate": 1e-4, "status": "stopped_early", "reason": "", "epochs_run": epochs,
            "stopped_early": True, "best_epoch": epochs - 5, "train_loss": 0.212345,
            "val_loss": 0.219234, "test_loss": 0.2201987, "seconds": 1234.56,
            "seconds_per_epoch": 12.3456, "peak_rss_mb": 1536.4, "history": _history(epochs),
            "loss_name": "binary cross-entropy", "epochs_max": 50, "seed": 42, **STEP_METRICS}


# What steps add to a run: the page puts them in tables of their own.
STEP_METRICS = {"mean_activation": 0.2581, "active_fraction": 0.4707, "dead_units": 3, "probe_accuracy": 0.9123,
                "kmeans_acc": 0.6012, "kmeans_nmi": 0.5023, "auroc": 0.8765, "verdict": "learning"}


def _png(path: Path, wide: bool = False) -> None:
    """A small real PNG (a wide one checks that images shrink to the page)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(30 if wide else 3, 2))
    ax.plot([0, 1], [0, 1])
    fig.savefig(path, dpi=40)
    plt.close(fig)


def make_run_folder(folder: Path, quick: bool = True, study: str = "fashion-shoes") -> Path:
    """A finished run folder as run_study writes it: metrics.json, study.toml, console.log and
    figures/, with long names, long summary lines and a wide model summary."""
    from aelab.report.plots import loss_curves

    (folder / "figures").mkdir(parents=True)
    runs = [_entry(f"{label}-bs{b}", label, b, e) for label, b, e in
            (("stacked", 32, 14), ("stacked", 256, 30), ("sparse", 32, 12), ("sparse", 256, 26))]
    runs.append(_entry(LONG + "bs64", LONG, 64, 9))
    figures = ["loss_curves", "reconstructions-stacked-bs256", "reconstructions-sparse-bs256",
               "accuracy_vs_k", "custom-figure"]
    fig = loss_curves(runs, "fashion-shoes: learning curves")
    fig.savefig(folder / "figures" / "loss_curves.png", dpi=40)
    for name in figures[1:]:
        _png(folder / "figures" / f"{name}.png", wide=name == "accuracy_vs_k")
    summary = ["Comparison:", "- Lowest validation loss: " + LONG + " " + "x" * 300,
               "- A sentence of ordinary words that is long enough to need wrapping on a page "
               "1,280 pixels wide, because it goes on and on about batch sizes and epochs. " * 3,
               "Code sparsity on test images (active: |z| > 0.01):",
               "- stacked-bs32: mean activation 2.2223, active fraction 0.5979, dead units 12/50",
               "- sparse-bs32: mean activation 2.2199, active fraction 0.5978, dead units 12/50"]
    metrics = {
        "study": study, "description": "Stacked vs sparse autoencoder " + LONG, "quick": quick,
        "dataset": {"dataset": "fashion-mnist", "requested": "fashion-mnist", "fallback_used": False,
                    "source": "/usr/share/datasets/fashion-mnist/" + "deep/" * 30,
                    "n_images": 21000, "image_shape": [1, 28, 28],
                    "class_names": ["Sandal", "Sneaker", "Ankle boot"],
                    "splits": {"train": 15000, "val": 3000, "test": 3000},
                    "scaling": "pixel values 0..255 scaled to [0, 1] (divided by 255)",
                    "stratification": "stratified by class (seed 42)",
                    "distribution": {s: [["Sandal", n // 3, 33.3], ["Sneaker", n // 3, 33.3],
                                         ["Ankle boot", n // 3, 33.3]]
                                     for s, n in (("train", 15000), ("val", 3000), ("test", 3000))}},
        "seed": 42, "runs": runs, "summary": summary, "figures": figures,
        "captions": {"custom-figure": "A caption the study wrote for its own figure."},
        "model_summaries": {"stacked": "Layer (type) " + "=" * 200 + "\nTotal params: 428,354",
                            LONG: "one line " + "y" * 400},
        "environment": {"aelab": "0.1.0", "torch": "2.13.0+cpu", "machine": "Linux-" + "z" * 300,
                        "finished": "2025-11-25 10:15:00"},
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "study.toml").write_text('name = "fashion-shoes"\ndescription = "' + "w" * 500 + '"\n')
    (folder / "console.log").write_text("Epoch 1/50 " + "-" * 400 + "\n" * 3)
    return folder


@pytest.fixture
def synthetic(tmp_path):
    return make_run_folder(tmp_path / "fashion-shoes-quick")


def test_captions_say_what_each_figure_shows():
    from aelab.report.html import caption

    assert caption("reconstructions-stacked-bs256") == \
        "Test images (top) and their reconstructions by stacked-bs256 (bottom); pixel values shown " \
        "clipped to [0, 1]."
    assert caption("loss_curves").startswith(
        "Training (dashed) and validation (solid) loss per epoch, one panel per model")
    assert caption("confusion-probe") .startswith("Confusion matrix of probe's classifier")
    assert caption("loss_curves", {"loss_curves": "Own words."}) == "Own words."
    assert caption("mystery") == "Figure mystery, made by the study's steps."


def test_report_has_a_caption_per_figure_and_a_quick_badge(synthetic):
    from aelab.report.html import render_report

    page = render_report(synthetic)
    assert page.count("<figure") == page.count("<figcaption>") == 5
    text = html.unescape(page)
    assert "Test images (top) and their reconstructions by sparse-bs256 (bottom); pixel values " \
           "shown clipped to [0, 1]." in text
    assert "A caption the study wrote for its own figure." in text
    assert 'id="quick-badge">quick run (reduced budget)</span>' in page
    metrics = json.loads((synthetic / "metrics.json").read_text())
    metrics["quick"] = False
    assert "quick-badge" not in render_report(synthetic, metrics)
    del metrics["quick"]
    assert "quick-badge" not in render_report(synthetic, metrics)


def test_captions_from_study_files_are_escaped(synthetic):
    from aelab.report.html import render_report

    metrics = json.loads((synthetic / "metrics.json").read_text())
    metrics["captions"] = {"loss_curves": "<script>alert(1)</script>"}
    page = render_report(synthetic, metrics)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@needs_chromium
def test_report_fits_a_1280_pixel_window(synthetic, tmp_path):
    from aelab.report.html import write_report

    seen = browser_check(write_report(synthetic), tmp_path)
    assert_fits(seen)
    assert seen["images"] == seen["loaded"] == seen["figures"] == 5
    assert "Test images (top) and their reconstructions by stacked-bs256 (bottom); pixel values " \
           "shown clipped to [0, 1]. " \
           "(reconstructions-stacked-bs256.png)" in seen["captions"]
    assert seen["badge"]["text"] == "quick run (reduced budget)" and seen["badge"]["width"] > 0
    assert seen["rows"] == 5


@needs_chromium
def test_results_fit_without_scrolling_and_the_summary_is_structured(synthetic, tmp_path):
    """Issue 21: the results table scrolled sideways at 1,280 px with the settings behind the
    scrollbar, rows were ~100 px tall, and the summary was one monospaced <pre>."""
    from aelab.report.html import write_report

    seen = browser_check(write_report(synthetic), tmp_path)
    assert seen["resultsOverflow"] == 0, f"the results table scrolls by {seen['resultsOverflow']} px"
    short = {name: h for name, h in seen["rowHeights"].items() if not name.startswith(LONG[:20])}
    assert len(short) == 4 and max(short.values()) < 40, short
    tags = seen["summaryTags"]
    assert {"h3", "ul", "li", "table"} <= set(tags) and "pre" not in tags
    assert seen["preprocessing"] == ("Preprocessing: pixel values 0..255 scaled to [0, 1] (divided by "
                                     "255); split stratified by class (seed 42).")


def test_results_state_shared_settings_once_and_step_metrics_apart(synthetic):
    from aelab.report.tables import results_tables

    runs = json.loads((synthetic / "metrics.json").read_text())["runs"]
    t = results_tables(runs)
    assert "optimizer nadam" in t["common"] and "hidden=[256, 50]" in t["common"] and "seed 42" in t["common"]
    assert t["columns"][:2] == ["run", "batch"] and "stopped early" not in t["columns"]
    assert [c["text"] for c in t["rows"][1]["cells"][:2]] == ["stacked-bs256", "256"]
    assert [x["columns"] for x in t["extra"]] == [
        ["run", "mean_activation", "active_fraction", "dead_units", "probe_accuracy", "kmeans_acc", "kmeans_nmi"],
        ["run", "auroc", "verdict"]]


def test_summary_lines_become_headings_lists_and_tables():
    from aelab.report.summary import summary_blocks

    blocks = summary_blocks(["Observations:", "Batch size:", "- stacked: batch 32 reaches 0.3 vs 0.6",
                             "Code sparsity:", "- a: mean activation 2.2, dead units 12/50",
                             "- b: mean activation 0.3, dead units 3/50", "Step x failed: why"])
    assert [(b["kind"], b.get("level")) for b in blocks] == [
        ("heading", 3), ("heading", 4), ("list", None), ("heading", 4), ("table", None), ("text", None)]
    assert blocks[4]["columns"] == ["", "mean activation", "dead units"]
    assert blocks[4]["rows"] == [["a", "2.2", "12/50"], ["b", "0.3", "3/50"]]


@needs_chromium
def test_comparison_page_fits_a_1280_pixel_window(synthetic, tmp_path):
    from aelab.report.html import compare_runs

    other = make_run_folder(tmp_path / ("other-" + LONG), quick=False)
    result = compare_runs([synthetic, other], tmp_path / "cmp")
    seen = browser_check(result.out / "compare.html", tmp_path)
    assert_fits(seen)
    assert seen["rows"] == 10 and seen["captions"] and "one panel per run folder and model" in seen["captions"][0]


def _printed(renderable, width: int) -> str:
    import io

    from rich.console import Console

    console = Console(width=width, file=io.StringIO())
    console.print(renderable)
    return console.file.getvalue()


@pytest.mark.parametrize("width", [80, 100])
def test_console_comparison_shows_every_number_in_full(synthetic, tmp_path, width):
    from aelab.report.html import CONSOLE_HIDDEN, compare_runs, comparison_table

    other = make_run_folder(tmp_path / "fashion-shoes-20251125-101500", quick=False)
    result = compare_runs([synthetic, other], tmp_path / "cmp")
    out = _printed(comparison_table(result), width)
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= width
    shown = [i for i, h in enumerate(result.headers) if h not in CONSOLE_HIDDEN and h != "run"]
    assert {result.headers[i] for i in shown} >= {"train loss", "val loss", "test loss", "time s"}
    for row in result.rows:
        for i in shown:
            if NUMBER.match(row[i]):
                assert row[i] in out, f"{result.headers[i]} = {row[i]} is not shown in full"
    # every run is named: its name's pieces, wherever they wrap, appear in order
    # every run is named in one line, under a table titled by its folder (issue 21: names
    # wrapped over 4-5 lines)
    assert "Comparison: fashion-shoes-20251125-101500" in out
    for name in ("stacked-bs32", "stacked-bs256", "sparse-bs32", "sparse-bs256"):
        assert name in out


def test_cli_compare_writes_nothing_without_out(synthetic, tmp_path, monkeypatch):
    """Issue 21: every call left a compare-<time>/ folder in the current directory."""
    from typer.testing import CliRunner

    from aelab.cli import app

    here = tmp_path / "checkout"
    here.mkdir()
    monkeypatch.chdir(here)
    other = make_run_folder(tmp_path / "other", quick=False)
    result = CliRunner().invoke(app, ["compare", str(synthetic), str(other)])
    assert result.exit_code == 0, result.output
    assert "Comparison" in result.output and "Written" not in result.output
    assert list(here.iterdir()) == []


def test_console_comparison_stays_one_row_per_run_when_it_fits(synthetic, tmp_path):
    from aelab.report.html import Comparison, comparison_table, results_rows

    entries = [{k: v for k, v in e.items() if k not in STEP_METRICS}  # short names, training columns
               for e in json.loads((synthetic / "metrics.json").read_text())["runs"][:4]]
    out = _printed(comparison_table(Comparison(entries, *results_rows(entries), tmp_path)), 120)
    assert out.count("\n│ ") == 4 and "0.2192" in out and "1234.6" in out  # one row per run
    assert "…" not in out


def test_console_results_table_never_cuts_a_number():
    from aelab.report.console import results_table

    entries = [_entry(f"fashion-shoes-quick/stacked-bs{b}", "stacked", b, 14) for b in (32, 256)]
    entries.append({"name": "probe", "probe_accuracy": 0.9})  # no history: no row
    for width in (60, 80, 120):
        out = _printed(results_table(entries), width)
        assert "…" not in out and max(len(line) for line in out.splitlines()) <= width
        for number in ("0.2123", "0.2192", "0.2202", "1234.6", "12.35", "1536"):
            assert number in out
        assert "probe" not in out


NUMBER = re.compile(r"^[-+]?[\d.,]+(e[-+]?\d+)?$")
