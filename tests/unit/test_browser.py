"""spikeloc.pipeline.browser: a page loaded in headless Chromium reports what a reader sees."""

from __future__ import annotations

import pytest

from spikeloc.errors import SpikelocError
from spikeloc.pipeline import browser

# scripts/bootstrap installs Chromium (and fails without it where it can install it)
needs_browser = pytest.mark.skipif(
    browser.find_browser() is None, reason="no Chromium (scripts/bootstrap installs it)"
)

PNG = (  # a 1 x 1 transparent PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


@needs_browser
def test_a_good_page_reports_images_links_and_figures(tmp_path):
    page = tmp_path / "ok.html"
    page.write_text(
        "<html><head><title>T</title></head><body><h2 id='sec'>S</h2>"
        f"<figure id='fig_a'><img alt='fig_a' src='data:image/png;base64,{PNG}'></figure>"
        "<p><a href='#fig_a'>Figure 1</a> and <a href='#sec'>Section 1</a></p></body></html>"
    )
    r = browser.inspect_page(page)
    assert r["title"] == "T" and r["images"] == 1 and r["broken_images"] == []
    assert r["internal_links"] == 2 and r["dangling_links"] == []
    assert r["figure_ids"] == ["fig_a"] and r["figures_without_image"] == []
    assert r["figures_unreferenced"] == []
    assert r["missing_markers"] == 0


@needs_browser
def test_a_bad_page_reports_what_is_wrong(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        "<html><body><figure id='f'><p>no image</p></figure>"
        "<img alt='broken' src='data:image/png;base64,AAAA'>"
        "<a href='#nowhere'>x</a><p>MISSING NUMBER a.b and MISSING NUMBER c.d</p></body></html>"
    )
    r = browser.inspect_page(page)
    assert r["broken_images"] == ["broken"] and r["dangling_links"] == ["#nowhere"]
    assert r["figures_without_image"] == ["f"] and r["missing_markers"] == 2
    assert r["figures_unreferenced"] == ["f"]
    assert browser.main([str(page)]) == 1


def test_a_missing_page_or_browser_is_one_line(tmp_path):
    with pytest.raises(SpikelocError, match="no such HTML file"):
        browser.inspect_page(tmp_path / "none.html")
    page = tmp_path / "p.html"
    page.write_text("<html><body></body></html>")
    with pytest.raises(SpikelocError, match="printed no report|no such file|No such file") as exc:
        browser.inspect_page(page, browser="/bin/true")
    assert "\n" not in str(exc.value)
