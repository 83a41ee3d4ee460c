"""docs/discrepancies.yaml: the 17 disagreements of prose and code, each side naming a config
key, preset, keyword, class field or metric that exists in the library."""

from __future__ import annotations

import copy

import pytest
import yaml

from spikeloc.pipeline import discrepancies as d


def test_the_table_has_all_17_and_every_side_exists():
    items = d.load()
    assert [i["number"] for i in items] == list(range(1, 18))
    assert d.check() == []


@pytest.mark.parametrize(
    "side,problem",
    [
        ({"kind": "config", "key": "training.no_such_key", "value": 1}, "training.no_such_key"),
        ({"kind": "config", "key": "training.regulariser.form", "value": "neither"}, "form"),
        ({"kind": "preset", "name": "nonesuch"}, "no preset"),
        ({"kind": "option", "name": "spikeloc.analysis.tca:fit_shifted", "keyword": "nope",
          "value": 1}, "has no keyword 'nope'"),
        ({"kind": "option", "name": "spikeloc.analysis.tca:fit_shifted", "keyword": "restarts",
          "value": "median"}, "is not one of"),
        ({"kind": "option", "name": "spikeloc.analysis.brainstem:BrainstemConfig.nope",
          "value": 1}, "has no field 'nope'"),
        ({"kind": "metric", "name": "dales_law.no_such_variable"}, "not a declared variable"),
        ({"kind": "metric", "name": "spikeloc.core.evaluation:nope"}, "has no nope"),
    ],
)
def test_a_side_naming_nothing_is_reported(tmp_path, side, problem):
    items = d.load()
    bad = copy.deepcopy(items)
    bad[2]["sides"]["text"] = side
    path = tmp_path / "docs" / "discrepancies.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({"format": "spikeloc-discrepancies/1", "items": bad}))
    (tmp_path / "workflow").symlink_to(d.Path("workflow").resolve())
    problems = d.check("docs/discrepancies.yaml", root=tmp_path)
    assert len(problems) == 1 and "items[2].sides.text" in problems[0], problems
    assert problem in problems[0], problems


def test_describe_prints_each_kind():
    assert d.describe({"kind": "none"}) == "-"
    assert d.describe({"kind": "config", "key": "training.legacy_numpy_seed", "value": None}) == (
        "training.legacy_numpy_seed: null"
    )
    assert d.describe({"kind": "option", "name": "spikeloc.analysis.tca:fit_shifted",
                       "keyword": "restarts", "value": "best"}) == "fit_shifted(restarts='best')"
