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
  const imgs = Array.from(document.images);
  const out = document.createElement("pre");
  out.id = "aelab-check";
  out.textContent = JSON.stringify({
    images: imgs.length,
    loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
    rows: document.querySelectorAll("#results tbody tr").length,
    external: Array.from(document.querySelectorAll("[src],[href]"))
      .map(e => e.getAttribute("src") || e.getAttribute("href"))
      .filter(u => !u.startsWith("data:") && !u.startsWith("#")),
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


def browser_check(page: Path, tmp_path: Path) -> dict:
    """Open ``page`` in headless Chromium and return what CHECK_SCRIPT recorded."""
    probe = page.with_name(page.stem + "-check.html")
    probe.write_text(page.read_text().replace("</body>", CHECK_SCRIPT + "</body>"))
    dom = chromium(probe, tmp_path / "profile-dom", "--virtual-time-budget=10000", "--dump-dom")
    found = re.search(r'<pre id="aelab-check">(.*?)</pre>', dom, re.S)
    assert found, "the check script did not run in the browser"
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One real quick study run (~15 s) shared by the tests of this module."""
    from aelab.study import load_study, run_study

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
    assert all(line in text for line in metrics["summary"])
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
    assert "Comparison" in result.output and "other/" in result.output
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
