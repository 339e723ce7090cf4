"""leaderboard.html in headless Chromium: every row shown, sorting works, no console errors.

Chromium loads the generated page with ``--dump-dom`` (the DOM after the page's script
ran) and ``--enable-logging=stderr``, which prints every console message and uncaught
exception as a ``:CONSOLE`` line; the page logs nothing when all is well.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from html.parser import HTMLParser

import pytest
from lb_helpers import make_runs

from textgym.leaderboard.render import write_leaderboard
from textgym.leaderboard.table import build

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)",
)


class Tables(HTMLParser):
    """The tables of a dumped DOM: id -> {"sorted", "headers", "rows" (cell data)}."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, dict] = {}
        self.body_attrs: dict[str, str | None] = {}
        self._table = None
        self._cell = None
        self._row = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body":
            self.body_attrs = attrs
        elif tag == "table" and "lb" in (attrs.get("class") or ""):
            self._table = {"sorted": attrs.get("data-sorted"), "headers": [], "rows": []}
            self.tables[attrs["id"]] = self._table
        elif self._table is not None and tag == "th":
            self._table["headers"].append(attrs.get("data-key"))
        elif self._table is not None and tag == "tr":
            self._row = {"hidden": "hidden" in attrs or "display" in (attrs.get("style") or "")}
            self._row["cells"] = []
        elif self._row is not None and tag == "td":
            self._cell = {"value": attrs.get("data-value"), "text": ""}

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row["cells"].append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row["cells"]:
                self._table["rows"].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data


def open_page(path, tmp_path, fragment=""):
    """(parsed DOM, console lines) of ``path`` loaded in headless Chromium."""
    profile = tmp_path / f"chromium-{uuid.uuid4().hex}"  # a fresh profile per load
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        "--dump-dom",
        path.resolve().as_uri() + fragment,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    parser = Tables()
    parser.feed(proc.stdout)
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return parser, console


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    make_runs(root / "runs")
    write_leaderboard(build([root / "runs"], n_resamples=500), root / "lb", command="test")
    data = json.loads((root / "lb" / "leaderboard.json").read_text())
    return root / "lb" / "leaderboard.html", data


def column(table, key):
    index = table["headers"].index(key)
    return [row["cells"][index] for row in table["rows"]]


def test_every_row_is_shown_and_no_console_errors(page, tmp_path):
    path, data = page
    dom, console = open_page(path, tmp_path)
    assert console == []
    assert dom.body_attrs.get("data-ready") == "true"  # the script ran to its end
    for env in data["envs"]:
        table = dom.tables[f"table-{env['env_id']}"]
        assert len(table["rows"]) == len(env["rows"])
        assert not any(row["hidden"] for row in table["rows"])
        shown = [cell["text"].strip() for cell in column(table, "agent")]
        assert shown == [row["agent"] for row in env["rows"]]


def test_sorting_from_the_url_hash(page, tmp_path):
    path, data = page
    dom, console = open_page(path, tmp_path, "#sort=agent")
    assert console == []
    ner = dom.tables["table-TextNER-v0"]
    assert ner["sorted"] == "agent:asc"
    agents = [cell["text"].strip() for cell in column(ner, "agent")]
    ner_rows = next(e for e in data["envs"] if e["env_id"] == "TextNER-v0")["rows"]
    assert agents == sorted(agents) and agents != [r["agent"] for r in ner_rows]

    dom, console = open_page(path, tmp_path, "#sort=metric:asc")
    assert console == []
    ner = dom.tables["table-TextNER-v0"]
    values = [float(cell["value"]) for cell in column(ner, "metric")]
    assert values == sorted(values) and len(values) == 4
    assert dom.tables["table-TextClassification-v0"]["sorted"] == "metric:asc"

    dom, _ = open_page(path, tmp_path, "#sort=wall:desc")
    walls = [float(cell["value"]) for cell in column(dom.tables["table-TextNER-v0"], "wall")]
    assert walls == sorted(walls, reverse=True) and walls[0] == 100.0


def test_the_console_check_sees_script_errors(tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><script>notDefinedAnywhere();</script></body></html>")
    _, console = open_page(broken, tmp_path)
    assert any("notDefinedAnywhere" in line for line in console)
