"""Text around embedded numbers survives Typst (issue 21, item 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spikeloc.pipeline.paper import PaperError, check_sources, swallowed_punctuation

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "line",
    [
        'an error of #qty("m.x"); a model',
        'the rate #num("m.rate");',
        "#val(\"m.n\"); then",
        'see #fig("m.f")[x]; next',
        '#m.helper("k"); more',
    ],
)
def test_a_semicolon_after_an_embedded_value_is_found(line):
    assert len(swallowed_punctuation(line)) == 1


@pytest.mark.parametrize(
    "line",
    [
        'an error of #qty("m.x")\\; a model',
        'an error of #qty("m.x"), then',
        "#let x = f(1);",
        "#set text(size: 10pt);",
        '// a comment: #qty("m.x"); is fine here',
        'see https://example.org/a;b and #qty("m.x").',
    ],
)
def test_escaped_semicolons_statements_and_comments_pass(line):
    assert swallowed_punctuation(line) == []


def test_the_build_names_every_offending_file_and_line(tmp_path):
    (tmp_path / "sections").mkdir()
    (tmp_path / "main.typ").write_text('fine #qty("a.b").\n')
    (tmp_path / "sections" / "s.typ").write_text('x\nan error of #qty("a.b"); a model\n')
    (tmp_path / "sections" / "t.typ").write_text('#num("a.c");\n')
    with pytest.raises(PaperError) as err:
        check_sources(tmp_path)
    lines = str(err.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{tmp_path / 'sections' / 's.typ'}:2: ")
    assert lines[1].startswith(f"{tmp_path / 'sections' / 't.typ'}:1: ")
    assert '#num("a.c")\\;' in lines[1]


def test_the_papers_own_sources_lose_no_punctuation():
    check_sources(ROOT / "paper")
