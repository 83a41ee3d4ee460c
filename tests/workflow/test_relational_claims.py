"""Relational claims: trends (Spearman), differences (two-sided tests) and "does not help"."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from spikeloc.pipeline import manifests, variables
from spikeloc.pipeline.validation import ProblemsError
from spikeloc.pipeline.variables import VariablesError

MANIFEST = """\
title: Demo
owners: [x]
figures: []
variables:
  - {name: acc_vs_tau}
  - {name: flat_vs_tau}
  - {name: acc_fast}
  - {name: acc_slow}
  - {name: acc_same}
claims:
  - {name: falls, kind: trend, variable: acc_vs_tau, direction: decreasing, min_rho: 0.5,
     text: Accuracy falls with tau.}
  - {name: rises, kind: trend, variable: acc_vs_tau, direction: increasing, text: Wrong sign.}
  - {name: flat_trend, kind: trend, variable: flat_vs_tau, direction: decreasing, text: Flat.}
  - {name: fast_better, kind: difference, a: acc_fast, b: acc_slow, direction: greater,
     text: Fast beats slow.}
  - {name: fast_better_mw, kind: difference, a: acc_fast, b: acc_slow, direction: greater,
     test: mann_whitney, text: Fast beats slow (U).}
  - {name: slow_better, kind: difference, a: acc_slow, b: acc_fast, direction: greater,
     text: Wrong direction.}
  - {name: same_no_help, kind: no_effect, a: acc_same, b: acc_slow, text: Does not help.}
  - {name: fast_no_help, kind: no_effect, a: acc_fast, b: acc_slow, text: Fails.}
  - {name: slow_no_help, kind: no_effect, a: acc_slow, b: acc_fast, text: Worse is no help.}
  - {name: paired, kind: difference, a: acc_fast, b: acc_slow, direction: two_sided,
     test: paired_t, text: Paired.}
  - {name: wrong_kind, kind: difference, a: acc_vs_tau, b: acc_slow, direction: greater,
     text: A series is not a sample set.}
  - {name: value_of_mean, variable: acc_fast, published: 80, tolerance: 1, text: Mean.}
"""

TAU = [2.0, 5.0, 10.0, 20.0]
ACC = [[90, 88, 91], [85, 86, 84], [70, 72, 75], [50, 55, 52]]
FAST = [80.0, 81.0, 79.5, 80.5, 79.0]
SLOW = [70.0, 72.0, 71.0, 69.5, 73.0]
SAME = [70.5, 71.0, 72.5, 69.0, 71.5]


def evaluate(tmp_path: Path) -> tuple[dict, dict]:
    d = tmp_path / "analyses"
    d.mkdir()
    (d / "demo.yaml").write_text(MANIFEST)
    rec = variables.recorder("demo", path=tmp_path / "demo.json")
    x = [t for t, accs in zip(TAU, ACC, strict=True) for _ in accs]
    y = [a for accs in ACC for a in accs]
    rec.series("acc_vs_tau", x, y, unit="%", x_unit="ms")
    rec.series("flat_vs_tau", x, [1.0] * len(x))
    rec.samples("acc_fast", np.array(FAST), ".1f", unit="%")
    rec.samples("acc_slow", SLOW, ".1f", unit="%")
    rec.samples("acc_same", SAME, ".1f", unit="%")
    variables.merge([tmp_path / "demo.json"], tmp_path / "variables.json", analyses_dir=d)
    out = tmp_path / "claims.json"
    res = variables.evaluate_claims(tmp_path / "variables.json", d, out)
    return {r["name"]: r for r in res}, json.loads(out.read_text())


def test_samples_and_series_are_recorded_with_their_summary(tmp_path):
    path = tmp_path / "demo.json"
    variables.record_samples("acc", [1, 2, 3, 6], ".2f", module="demo", path=path, unit="%")
    variables.record_series("curve", [1, 2], [3.5, 4.5], module="demo", path=path)
    e = variables.load(path)
    assert e["acc"] == {
        "kind": "samples",
        "value": 3.0,
        "text": "3.00",
        "n": 4,
        "sd": pytest.approx(np.std([1, 2, 3, 6], ddof=1)),
        "samples": [1.0, 2.0, 3.0, 6.0],
        "unit": "%",
    }
    assert e["curve"]["x"] == [1.0, 2.0] and e["curve"]["y"] == [3.5, 4.5]
    assert e["curve"]["value"] == 2 and e["curve"]["text"] == "2 points"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda p: variables.record_samples("a", [], module="demo", path=p), "a: samples is empty"),
        (
            lambda p: variables.record_samples("a", [1, float("nan")], module="demo", path=p),
            r"a: samples\[1\] must be finite",
        ),
        (
            lambda p: variables.record_samples("a", 3.0, module="demo", path=p),
            "a: samples must be a sequence",
        ),
        (
            lambda p: variables.record_series("s", [1, 2], [1], module="demo", path=p),
            "s: x has 2 points but y has 1",
        ),
        (lambda p: variables.record_samples("Bad", [1], module="demo", path=p), "snake case"),
    ],
)
def test_bad_samples_are_rejected(tmp_path, call, message):
    with pytest.raises(VariablesError, match=message):
        call(tmp_path / "demo.json")


def test_trend_is_spearman_with_sign_size_and_p(tmp_path):
    r, _ = evaluate(tmp_path)
    x = [t for t, accs in zip(TAU, ACC, strict=True) for _ in accs]
    y = [a for accs in ACC for a in accs]
    want = stats.spearmanr(x, y)
    assert r["falls"]["statistic"] == pytest.approx(want.statistic)
    assert r["falls"]["p_value"] == pytest.approx(want.pvalue)
    assert r["falls"]["statistic"] < -0.9 and r["falls"]["status"] == "holds"
    assert r["falls"]["n"] == 12 and r["falls"]["within"]
    assert r["rises"]["status"] == "fails" and not r["rises"]["within"]
    assert r["flat_trend"]["status"] == "undefined" and not r["flat_trend"]["within"]
    assert r["falls"]["published_text"] == "decreasing (rho < -0.5)"


def test_trend_below_min_rho_fails_even_if_significant(tmp_path):
    d = tmp_path / "analyses"
    d.mkdir()
    claim = {
        "name": "t",
        "kind": "trend",
        "variable": "s",
        "direction": "increasing",
        "min_rho": 0.9,
        "alpha": 0.05,
        "text": ".",
    }
    rng = np.random.default_rng(0)
    x = np.repeat(np.arange(10.0), 20)
    y = x * 0.3 + rng.normal(size=x.size) * 2
    entry = {"kind": "series", "x": x.tolist(), "y": y.tolist(), "value": x.size}
    res = variables.evaluate_claim(claim, "demo", {"demo.s": entry})
    rho = stats.spearmanr(x, y).statistic
    assert 0.2 < rho < 0.9 and res["p_value"] < 0.05 and res["status"] == "fails"


def test_difference_is_a_two_sided_test_with_effect_size(tmp_path):
    r, doc = evaluate(tmp_path)
    want = stats.ttest_ind(FAST, SLOW, equal_var=False)
    c = r["fast_better"]
    assert c["status"] == "holds" and c["test"] == "Welch t-test"
    assert c["p_value"] == pytest.approx(want.pvalue) and c["statistic"] == pytest.approx(
        want.statistic
    )
    pooled = np.sqrt((np.var(FAST, ddof=1) + np.var(SLOW, ddof=1)) / 2)  # equal n
    assert c["effect_size"] == pytest.approx((np.mean(FAST) - np.mean(SLOW)) / pooled)
    assert c["difference"] == pytest.approx(np.mean(FAST) - np.mean(SLOW))
    assert r["fast_better_mw"]["p_value"] == pytest.approx(
        stats.mannwhitneyu(FAST, SLOW, alternative="two-sided").pvalue
    )
    assert r["slow_better"]["status"] == "fails"
    assert r["paired"]["p_value"] == pytest.approx(stats.ttest_rel(FAST, SLOW).pvalue)
    assert r["wrong_kind"]["status"] == "wrong variable kind"
    assert r["value_of_mean"]["within"] and r["value_of_mean"]["measured"] == np.mean(FAST)
    assert doc["n_relational"] == 11 and doc["n_value"] == 1
    assert doc["n_holding"] == sum(x["within"] for x in r.values() if x["kind"] != "value")


def test_no_effect_holds_unless_a_significant_improvement(tmp_path):
    r, _ = evaluate(tmp_path)
    assert r["same_no_help"]["status"] == "holds"
    assert r["same_no_help"]["p_value"] > 0.05
    assert r["fast_no_help"]["status"] == "fails"  # a significant improvement
    assert r["slow_no_help"]["status"] == "holds"  # significantly worse is still no help
    assert r["same_no_help"]["published_text"] == "not acc_same > acc_slow"


def test_paired_tests_need_equal_lengths():
    with pytest.raises(VariablesError, match="equal length"):
        variables.two_sample_test([1, 2, 3], [1, 2], "paired_t")


def test_command_line_prints_relational_verdicts(tmp_path, capsys):
    evaluate(tmp_path)
    args = [
        "claims",
        "--variables",
        str(tmp_path / "variables.json"),
        "--analyses",
        str(tmp_path / "analyses"),
        "--out",
        str(tmp_path / "c.json"),
    ]
    assert variables.main(args) == 0
    out = capsys.readouterr().out
    assert "demo.falls (trend): claimed decreasing (rho < -0.5), Spearman rank corr." in out
    assert "-> holds" in out and "-> fails" in out


@pytest.mark.parametrize(
    "claim, message",
    [
        (
            "{name: t, kind: trend, direction: decreasing, text: x}",
            "claims[0].variable: missing required field",
        ),
        ("{name: t, kind: trend, variable: s, direction: greater, text: x}", "claims[0].direction"),
        (
            "{name: t, kind: difference, a: s, direction: greater, text: x}",
            "claims[0].b: missing required field",
        ),
        (
            "{name: t, kind: difference, a: s, b: nope, direction: greater, text: x}",
            "claims[0].b: 'nope' is not in this module's variables",
        ),
        ("{name: t, kind: no_effect, a: s, b: s, test: ttest, text: x}", "claims[0].test"),
        (
            "{name: t, kind: trend, variable: s, direction: increasing, alpha: 2, text: x}",
            "claims[0].alpha",
        ),
        ("{name: t, variable: s, text: x}", "claims[0].published: missing required field"),
    ],
)
def test_bad_relational_claims_are_rejected(tmp_path, claim, message):
    d = tmp_path / "workflow" / "analyses"
    d.mkdir(parents=True)
    (d / "demo.yaml").write_text(
        f"title: Demo\nowners: [x]\nfigures: []\nvariables: [{{name: s}}]\nclaims:\n  - {claim}\n"
    )
    with pytest.raises(ProblemsError) as exc:
        manifests.load_manifests(d)
    assert message in str(exc.value)


def test_the_report_typesets_every_relational_verdict(tmp_path):
    typst = pytest.importorskip("typst")
    _, doc = evaluate(tmp_path)
    root = tmp_path / "doc"
    (root / "paper" / "sections").mkdir(parents=True)
    src = Path(__file__).resolve().parents[2] / "paper" / "sections" / "_claims.typ"
    (root / "paper" / "sections" / "_claims.typ").write_text(src.read_text())
    (root / "claims.json").write_text(json.dumps(doc))
    (root / "main.typ").write_text(
        '#import "/paper/sections/_claims.typ": relational-claims\n'
        '#relational-claims(json("/claims.json"))\n'
    )
    pdf = typst.compile(str(root / "main.typ"), root=str(root), format="pdf")
    assert pdf[:4] == b"%PDF"
    svg = typst.compile(str(root / "main.typ"), root=str(root), format="svg")
    assert svg  # typesets; the statuses are in the data it was given
    assert {c["status"] for c in doc["claims"] if c["kind"] != "value"} >= {
        "holds",
        "fails",
        "undefined",
        "wrong variable kind",
    }


def test_a_paired_test_of_constant_differences_writes_strict_json():
    """All paired differences equal: t is infinite and p is 0. The verdict uses them; the
    claims file writes the statistic as null, since JSON (and Typst's reader) has no inf."""
    import json

    claim = {"name": "c", "kind": "difference", "a": "a", "b": "b", "direction": "greater",
             "test": "paired_t", "text": "a beats b"}
    a = {"kind": "samples", "samples": [5.0, 6.0, 7.0], "value": 6.0}
    b = {"kind": "samples", "samples": [7.0, 8.0, 9.0], "value": 8.0}
    res = variables.evaluate_claim(claim, "demo", {"demo.a": a, "demo.b": b})
    assert res["status"] == "fails" and res["p_value"] == 0.0 and res["statistic"] is None
    json.dumps(res, allow_nan=False)  # strict JSON
