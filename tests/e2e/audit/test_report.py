"""``ledger report``: a self-contained HTML report, opened in headless Chromium.

Checks that the page fetches nothing, that every country's chart renders with a real
size and without script errors (the page records both on <body>, read back with
--dump-dom), that a screenshot is not blank, and that the report is reproducible
byte for byte with --known-at after later appends.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
    pytest.skip("chromium is not installed")


def browse(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"  # fresh every run
    return subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                           "--virtual-time-budget=5000", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def report_file(cli: Any, sample_db: Path, tmp_path: Path) -> Path:
    pytest.importorskip("matplotlib")
    out = tmp_path / "report.html"
    result = cli(sample_db, "report", "--as-of", "2025-12-31", "--rule", "ai-diffusion-2025",
                 "--out", str(out))
    assert "for 3 tier-2 countries (AE, IN, MX); computed at recorded position 27" \
        in result.stdout
    return out


def test_report_is_self_contained(report_file: Path) -> None:
    text = report_file.read_text()
    # nothing to fetch: no src/href to another document, no CSS import or url()
    assert not re.search(r"""\b(src|href)\s*=\s*["'](?!#)""", text)
    assert "@import" not in text and not re.search(r"url\((?!#)", text)  # url(#id) is local
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) <= {
        "http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    for country in ("AE", "IN", "MX"):
        assert f'<section id="c-{country}">' in text
    assert "Computed at recorded position <b>27</b>" in text
    assert "first breach 2025-06-01" in text  # marked on Mexico's chart
    assert "in force: diffusion-nonenforcement-2025" in text  # a rule change marked
    assert "Replay comparison: ai-diffusion-2025 against diffusion-nonenforcement-2025" in text
    assert "LIC-MX-ACME-1" in text and "mx-lab-1" in text and "VEU-AE-1" in text


def test_report_renders_in_chromium(report_file: Path, tmp_path: Path) -> None:
    result = browse(report_file, tmp_path, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert dom.count("<svg") == 3
    assert 'data-charts-rendered="3"' in dom, dom[:500]
    assert 'data-errors="' not in dom  # set by the page's error handler

    shot = tmp_path / "report.png"
    result = browse(report_file, tmp_path, "--window-size=1200,2400", f"--screenshot={shot}")
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    from PIL import Image  # installed with matplotlib

    with Image.open(shot) as image:
        assert image.size == (1200, 2400)
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
        assert len(colors) > 50  # charts and tables, not a blank page


def test_first_chart_screenshot_is_not_blank(report_file: Path, tmp_path: Path) -> None:
    """Screenshot the page in headless Chromium and look at the first chart only (its
    box, measured by the page itself): a drawn chart has the committed line's blue,
    the cap's red and many shades; a blank or failed one is a flat rectangle."""
    dom = browse(report_file, tmp_path, "--dump-dom", "--window-size=1200,2400",
                 "--force-device-scale-factor=1").stdout
    found = re.search(r'data-first-chart="(\d+),(\d+),(\d+),(\d+)"', dom)
    assert found, dom[:500]
    left, top, width, height = map(int, found.groups())
    assert width > 300 and height > 150
    shot = tmp_path / "first-chart.png"
    result = browse(report_file, tmp_path, "--window-size=1200,2400",
                    "--force-device-scale-factor=1", f"--screenshot={shot}")
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as image:
        chart = image.convert("RGB").crop((left, top, left + width, top + height))
        raw = chart.tobytes()
    pixels = [tuple(raw[i:i + 3]) for i in range(0, len(raw), 3)]

    def near(rgb: tuple[int, ...], target: tuple[int, int, int]) -> bool:
        return all(abs(a - b) <= 40 for a, b in zip(rgb, target, strict=True))

    ink = [px for px in pixels if sum(px) < 3 * 235]  # anything not (near) white
    assert len(ink) > 0.01 * len(pixels), "the first chart is blank"
    assert len(set(pixels)) > 50, "the first chart is a flat area"
    # the committed line (at least its legend and the line along the axis) and the cap
    assert sum(near(px, (0x1F, 0x5F, 0xA8)) for px in pixels) > 20
    assert sum(near(px, (0xB0, 0x30, 0x30)) for px in pixels) > 50


def test_country_names_beside_codes_and_progress_on_stderr(cli: Any, sample_db: Path,
                                                           tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "named.html"
    result = cli(sample_db, "report", "--as-of", "2025-12-31", "--out", str(out))
    text = out.read_text()
    assert "<h2>Mexico (MX)</h2>" in text and "United Arab Emirates (AE)" in text
    assert '<a href="#c-IN">India (IN)</a>' in text
    # not a terminal: one progress line on stderr, nothing on stdout but the result
    assert result.stderr.startswith("report: computing 3 tier-2 countries")
    assert "report:" not in result.stdout
    quiet = cli(sample_db, "report", "--as-of", "2025-12-31", "--out", str(out), "--quiet")
    assert quiet.stderr == ""


def test_report_without_rule_and_reproducible(cli: Any, sample_db: Path,
                                              tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    first, again = tmp_path / "first.html", tmp_path / "again.html"
    cli(sample_db, "report", "--as-of", "2025-12-31", "--out", str(first))
    text = first.read_text()
    assert "Rule revision applied: <b>diffusion-nonenforcement-2025</b> (in force)" in text
    assert "Replay comparison" not in text
    cli(sample_db, "ship", "record", "--exporter", "acme", "--ref", "LATE-1", "--date",
        "2025-06-10", "--to", "MX", "--consignee", "mx-dc-1", "--product", "nvidia-h100-sxm",
        "--quantity", "700", "--end-use", "inference")
    cli(sample_db, "report", "--as-of", "2025-12-31", "--known-at", "27", "--out", str(again))
    assert again.read_bytes() == first.read_bytes()
