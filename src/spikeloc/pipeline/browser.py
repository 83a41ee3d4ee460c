"""The HTML edition read in a real browser: headless Chromium loads it offline and reports
what a reader would see -- every image displayed, every link resolving, no missing number.

    python -m spikeloc.pipeline.browser paper/build/quick/paper.html      # prints the report

A copy of the page gets a small script that runs after the browser has loaded and decoded
everything (``load``): it counts the images and which did not decode (``naturalWidth`` 0),
the in-page links whose target id does not exist, the figures without an image, those no
link of the text points to, and the occurrences of the draft marker for missing numbers; Chromium's ``--dump-dom`` prints the page
with that report in it. Nothing is fetched from the network (the edition is one file; the
browser runs with networking disabled).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from spikeloc.errors import SpikelocError

__all__ = ["BROWSERS", "find_browser", "inspect_page", "main"]

#: Executables tried, in order (Debian's package is ``chromium``).
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

_REPORT_ID = "spikeloc-browser-report"

_SCRIPT = """
<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                   .map(function (i) { return i.alt || i.src.slice(0, 40); });
  var anchors = Array.prototype.slice.call(document.querySelectorAll("a[href]"));
  var dangling = anchors.filter(function (a) {
    var h = a.getAttribute("href");
    return h.charAt(0) === "#" && !document.getElementById(decodeURIComponent(h.slice(1)));
  }).map(function (a) { return a.getAttribute("href"); });
  var figures = Array.prototype.slice.call(document.querySelectorAll("figure"));
  // a figure's name: its id (Typst writes one where the text links to it), else its image's
  // alt text (the HTML edition gives every figure image its figure id as alt)
  var fid = function (f) {
    if (f.id) { return f.id; }
    var i = f.querySelector("img");
    return i && i.alt ? i.alt : "";
  };
  var empty = figures.filter(function (f) { return !f.querySelector("img, svg, table"); })
                     .map(function (f) { return fid(f) || "(no id)"; });
  var targets = {};
  anchors.forEach(function (a) {
    var h = a.getAttribute("href");
    if (h.charAt(0) === "#") { targets[decodeURIComponent(h.slice(1))] = true; }
  });
  var unreferenced = figures.filter(function (f) { return !targets[fid(f)]; })
                            .map(function (f) { return fid(f) || "(no id)"; });
  var text = document.body.innerText;
  var report = {
    title: document.title,
    images: imgs.length,
    broken_images: broken,
    links: anchors.length,
    internal_links: anchors.filter(function (a) {
      return a.getAttribute("href").charAt(0) === "#"; }).length,
    dangling_links: dangling,
    figures: figures.length,
    figure_ids: figures.map(fid),
    figures_without_image: empty,
    figures_unreferenced: unreferenced,
    missing_markers: (text.match(/__MARKER__/g) || []).length,
    headings: document.querySelectorAll("h1, h2, h3").length,
    text_chars: text.length
  };
  var pre = document.createElement("pre");
  pre.id = "__REPORT_ID__";
  pre.textContent = JSON.stringify(report);
  document.body.appendChild(pre);
});
</script>
"""


def find_browser() -> str | None:
    """The path of a Chromium-family browser, or None."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def inspect_page(
    html: str | Path,
    *,
    marker: str = "MISSING NUMBER",
    browser: str | None = None,
    timeout: float = 120,
) -> dict[str, Any]:
    """Load ``html`` in headless Chromium and return what the page shows (see the module)."""
    html = Path(html)
    if not html.is_file():
        raise SpikelocError(f"{html}: (file): no such HTML file")
    browser = browser or find_browser()
    if browser is None:
        raise SpikelocError(
            f"{html}: (browser): no Chromium found (tried {', '.join(BROWSERS)}); "
            "install it (Debian: apt-get install chromium)"
        )
    page = html.read_text(encoding="utf-8")
    script = _SCRIPT.replace("__MARKER__", re.escape(marker)).replace("__REPORT_ID__", _REPORT_ID)
    at = page.rfind("</body>")
    page = page[:at] + script + page[at:] if at >= 0 else page + script
    with tempfile.TemporaryDirectory(prefix="spikeloc-browser-") as tmp:
        probe = Path(tmp) / html.name
        probe.write_text(page, encoding="utf-8")
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",  # root in containers and CI
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--user-data-dir=" + str(Path(tmp) / "profile"),
            "--proxy-server=127.0.0.1:9",  # offline: any network request fails at once
            "--virtual-time-budget=20000",
            "--dump-dom",
            probe.as_uri(),
        ]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise SpikelocError(
                f"{html}: (browser): {browser} did not finish in {timeout:.0f} s"
            ) from None
    m = re.search(rf'<pre id="{_REPORT_ID}">(.*?)</pre>', out.stdout, re.S)
    if m is None:
        tail = (out.stderr or "").strip().splitlines()[-3:]
        raise SpikelocError(
            f"{html}: (browser): {Path(browser).name} printed no report (exit {out.returncode}"
            f"{'; ' + ' | '.join(tail) if tail else ''})"
        )
    text = m.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
    return json.loads(text.replace("&amp;", "&"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m spikeloc.pipeline.browser PAGE.html", file=sys.stderr)
        return 2
    try:
        report = inspect_page(argv[0])
    except SpikelocError as exc:
        print(f"spikeloc: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=1))
    bad = report["broken_images"] or report["dangling_links"] or report["missing_markers"]
    return 1 if bad else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
