"""The screenshots of docs/reporting.md: the bundled `default` scenario's report (with its tornado) in
headless Chromium, cut into the top of the page and the uncertainty charts.

    .venv/bin/python tools/report_screenshot.py            # writes docs/img/report-*.png
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from headless_chromium import Chromium, find_chromium
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 900  # pixels of the images in the docs


def ewaste(*args: str, cwd: Path) -> None:
    """Run `ewaste ARGS` in `cwd` with this Python; raises CalledProcessError if it fails."""
    subprocess.run([sys.executable, "-m", "ewaste.cli", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def box(chromium: Chromium, selector: str) -> tuple[int, int]:
    """Top and bottom of an element, in page pixels."""
    r = json.loads(
        chromium.evaluate(
            f"JSON.stringify((() => {{ const r = document.querySelector('{selector}').getBoundingClientRect();"
            " return [r.top + scrollY, r.bottom + scrollY]; })())"
        )
    )
    return int(r[0]), int(r[1])


def save(page: Image.Image, top: int, bottom: int, path: Path) -> None:
    """Rows `top` to `bottom` of the page, scaled to WIDTH, as an optimised PNG."""
    part = page.crop((0, max(top, 0), page.width, bottom)).convert("RGB")
    part = part.resize((WIDTH, round(part.height * WIDTH / part.width)), Image.LANCZOS)
    part.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"{path.relative_to(ROOT)}: {part.width} x {part.height}")


def main() -> None:
    """Make the report, open it in Chromium, write the two screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args()
    executable = find_chromium()
    if executable is None:
        sys.exit("report_screenshot: no Chromium found (install the Debian package chromium, or set EWASTE_CHROMIUM)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ewaste("sensitivity", args.scenario, "--method", "tornado", "-o", "s.nc", cwd=folder)
        ewaste("report", args.scenario, "--sensitivity", "s.nc", "-o", "report.html", cwd=folder)
        with Chromium(executable, width=1100) as chromium:
            chromium.open(folder / "report.html")
            page = Image.open(io.BytesIO(chromium.screenshot()))
            question = box(chromium, "#question")
            fan, tornado = box(chromium, "#chart-fan"), box(chromium, "#chart-tornado")
    args.out.mkdir(parents=True, exist_ok=True)
    save(page, 0, question[1] + 10, args.out / "report-top.png")
    save(page, fan[0] - 10, tornado[1] + 10, args.out / "report-uncertainty.png")


if __name__ == "__main__":
    main()
