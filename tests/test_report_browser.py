"""report.html checked in a real browser: Debian's ``chromium`` renders it headless at 1,280 px; a probe script
(added to a copy of the page only) measures what a reader would see and writes it into the DOM, which ``--dump-dom``
returns. Every image and inline SVG must load and be shown at (nearly) its own size, nothing may be wider than the
viewport, every section must be there, and the tables must sort. The full-page screenshot is kept as
``build/test-artifacts/report-1280.png``. Skipped where no Chromium is installed (``scripts/setup_chromium.sh``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from test_peers_track import WORKLOAD, _ok, _target
from test_report import SIZES, synthetic_tracks, write_run

from loaderbench.report.html import embedded_png, html_table, render_html
from loaderbench.report.plots import render_plots
from loaderbench.results import write_track
from loaderbench.tracks.peers import _rows, mark_fastest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH: scripts/setup_chromium.sh installs Debian's chromium"
)

VIEWPORT = 1280
ARTIFACT = Path(__file__).resolve().parents[1] / "build" / "test-artifacts" / "report-1280.png"
# Chromium's own limit for one screenshot is far above this; a taller page is cut (the probe still sees all of it).
MAX_SHOT_HEIGHT = 20_000
TRACK_SECTIONS = ("track-getitem", "track-dataloader", "track-end_to_end", "track-conversion", "track-peers")

# Runs after every image has loaded: measures, clicks one header to sort, and writes JSON into #lb-probe.
PROBE = """<script>
window.addEventListener("load", function () {
  var root = document.documentElement, vw = root.clientWidth, result = {};
  result.innerWidth = window.innerWidth; result.viewport = vw;
  result.docScrollWidth = root.scrollWidth; result.docScrollHeight = root.scrollHeight;
  result.images = Array.prototype.map.call(document.images, function (img) {
    return {alt: img.alt, ok: img.complete && img.naturalWidth > 0, shown: img.getBoundingClientRect().width,
            natural: img.naturalWidth};
  });
  result.svgs = Array.prototype.map.call(document.querySelectorAll("svg.plot"), function (svg) {
    var box = svg.getBoundingClientRect(), figure = svg.closest("figure");
    return {figure: figure ? figure.id : "", shown: box.width, height: box.height,
            intrinsic: svg.width.baseVal.value, intrinsicHeight: svg.height.baseVal.value,
            elements: svg.getElementsByTagName("*").length, texts: svg.getElementsByTagName("text").length,
            right: box.right};
  });
  function clipped(el) {
    for (var p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      var o = getComputedStyle(p).overflowX;
      if (o === "auto" || o === "scroll" || o === "hidden" || o === "clip") { return true; }
    }
    return false;
  }
  result.tooWide = [];
  Array.prototype.forEach.call(document.body.getElementsByTagName("*"), function (el) {
    var box = el.getBoundingClientRect();
    if (box.width > 0 && box.right > vw + 0.5 && !clipped(el) && !el.closest("svg")) {
      result.tooWide.push(el.tagName + "#" + el.id + "." + el.className + " right=" + Math.round(box.right));
    }
  });
  result.sections = Array.prototype.map.call(document.querySelectorAll("section[id]"), function (s) { return s.id; });
  var details = document.querySelectorAll("details.medians");
  result.medians = Array.prototype.map.call(details, function (d) {
    return {section: d.closest("section").id, open: d.open, best: d.querySelectorAll("tr.best .best-mark").length,
            rows: d.querySelectorAll("tbody tr").length};
  });
  var table = document.querySelector("#track-getitem table.sortable"), sorted = {};
  if (table) {
    var th = Array.prototype.find.call(table.tHead.rows[0].cells, function (c) { return c.textContent === "p50_ms"; });
    var column = th.cellIndex;
    var values = function () { return Array.prototype.map.call(table.tBodies[0].rows, function (r) {
      return Number(r.cells[column].getAttribute("data-v")); }); };
    th.click(); sorted.ascending = values(); sorted.ascendingState = th.getAttribute("aria-sort");
    th.click(); sorted.descending = values(); sorted.descendingState = th.getAttribute("aria-sort");
  }
  result.sorted = sorted;
  var out = document.createElement("pre"); out.id = "lb-probe"; out.hidden = true;
  out.textContent = JSON.stringify(result); document.body.appendChild(out);
});
</script>"""


def _chromium(args: list[str], user_dir: Path, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    """One headless Chromium run; ``--no-sandbox`` because tests may run as root (Chromium refuses otherwise)."""
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               "--disable-extensions", f"--user-data-dir={user_dir}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def _peers_frame() -> pd.DataFrame:
    results = [_ok("native", "documented", [300_000.0, 310_000.0, 290_000.0]),
               _ok("expert_torch", "uint8_preloaded", [200_000.0, 210_000.0, 190_000.0]),
               {"peer": "spdl", "variant": "", "status": "unavailable", "reason": "spdl is not installed"}]
    return mark_fastest(pd.DataFrame([row for r in results for row in _rows(_target(), r, WORKLOAD)]))


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = write_run(tmp_path_factory.mktemp("browser"), synthetic_tracks(SIZES))
    write_track(out, "peers", _peers_frame())
    render_plots(out)
    # an extra section as the sparse/profile packages add them: a PNG and a table far wider than the page
    wide = html_table([f"column {i}" for i in range(40)], [[f"<td>{'x' * 12}</td>" for _ in range(40)]])
    png = embedded_png(out / "plots" / "getitem.png", "extra png", "missing")
    page = render_html(out, extra_sections=[("Extra <section>", png + wide)]).read_text(encoding="utf-8")
    probe_page = out / "report-probe.html"
    probe_page.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    with tempfile.TemporaryDirectory() as user_dir:
        dumped = _chromium([f"--window-size={VIEWPORT},1000", "--dump-dom", probe_page.as_uri()], Path(user_dir))
    found = re.search(r'<pre id="lb-probe" hidden="">(.*?)</pre>', dumped.stdout, re.DOTALL)
    assert found, f"no probe output from chromium (rc {dumped.returncode}): {dumped.stderr[-2000:]}"
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
                        .replace("&amp;", "&"))
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.unlink(missing_ok=True)
    height = min(int(result["docScrollHeight"]), MAX_SHOT_HEIGHT)
    with tempfile.TemporaryDirectory() as user_dir:
        shot = _chromium([f"--window-size={VIEWPORT},{height}", f"--screenshot={ARTIFACT}",
                          (out / "report.html").as_uri()], Path(user_dir), timeout=120.0)
    result["screenshot_rc"], result["screenshot_err"] = shot.returncode, shot.stderr[-2000:]
    return result


def test_viewport_is_1280(probed: dict) -> None:
    assert probed["innerWidth"] == VIEWPORT and probed["viewport"] == VIEWPORT


def test_every_image_and_svg_loads(probed: dict) -> None:
    assert probed["images"], "the extra section's PNG is missing"
    assert [i["alt"] for i in probed["images"] if not i["ok"]] == []
    svgs = probed["svgs"]
    # getitem 3, dataloader 3, end_to_end 3, conversion 2, peers 2 figures
    assert len(svgs) == 13, [s["figure"] for s in svgs]
    for svg in svgs:
        assert svg["shown"] > 200 and svg["height"] > 100, svg
        assert svg["elements"] > 50 and svg["texts"] > 5, svg  # drawn, with its labels as text


def test_figures_are_shown_at_their_own_size(probed: dict) -> None:
    """Readable at 1,280 px: no figure is shrunk by more than a few percent (its text stays at ~13 px), and each
    keeps its aspect ratio."""
    for svg in probed["svgs"]:
        assert svg["shown"] >= 0.95 * svg["intrinsic"], svg
        assert svg["shown"] <= VIEWPORT, svg
        ratio = svg["height"] / svg["shown"]
        assert abs(ratio - svg["intrinsicHeight"] / svg["intrinsic"]) < 0.01, svg


def test_nothing_is_wider_than_the_viewport(probed: dict) -> None:
    assert probed["docScrollWidth"] <= probed["viewport"], probed["tooWide"][:10]
    assert probed["tooWide"] == []
    assert max(s["right"] for s in probed["svgs"]) <= probed["viewport"]


def test_every_section_is_present(probed: dict) -> None:
    sections = probed["sections"]
    for section in ("verdict", "skipped-formats", "run", *TRACK_SECTIONS, "extra-0", "how-to-read"):
        assert section in sections, (section, sections)
    assert sections.index("verdict") == 0


def test_medians_tables_collapsed_with_the_best_row_marked(probed: dict) -> None:
    tables = {t["section"]: t for t in probed["medians"]}
    assert set(tables) == set(TRACK_SECTIONS)
    for section, table in tables.items():
        assert not table["open"], section
        expected = 1 if section == "track-peers" else len(SIZES)  # one best row per image size
        assert table["best"] == expected, (section, table)


def test_tables_sort_in_the_browser(probed: dict) -> None:
    sorted_ = probed["sorted"]
    assert sorted_["ascendingState"] == "ascending" and sorted_["descendingState"] == "descending"
    assert sorted_["ascending"] == sorted(sorted_["ascending"]) and len(sorted_["ascending"]) > 10
    assert sorted_["descending"] == sorted(sorted_["ascending"], reverse=True)


def test_screenshot_is_kept(probed: dict) -> None:
    assert probed["screenshot_rc"] == 0, probed["screenshot_err"]
    data = ARTIFACT.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    width = int.from_bytes(data[16:20], "big")  # IHDR: the screenshot is the 1,280 px viewport
    assert width == VIEWPORT
