"""Contributors and authorship: validation messages, author order, CRediT, CITATION.cff.

The fixture people in tests/fixtures/contributors/ are fictional; their modules are the
manifests in tests/fixtures/authorship/analyses/.
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
import types
from pathlib import Path

import pytest
import yaml

from spikeloc.pipeline import authorship
from spikeloc.pipeline.authorship import AuthorshipError

REPO = Path(__file__).resolve().parents[2]
FIXTURE_CONTRIBUTORS = REPO / "tests" / "fixtures" / "contributors"
FIXTURES = REPO / "tests" / "fixtures" / "authorship"
SCHEMA = REPO / "workflow" / "schemas" / "contributor.schema.json"

# Base seed 5 (tests/fixtures/contributors/order-seed.txt) puts the fixture people in this order.
EXPECTED_ORDER = [
    "ada-testperson",  # coordinator: first
    "femi-placeholder",
    "eve-sample",
    "dmitri-mock",
    "carla-fixture",
    "gus-dummy",
    "BenExample",  # coordinator: last
]


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """A writable copy of the fixture contributors and manifests."""
    contributors = tmp_path / "contributors"
    analyses = tmp_path / "analyses"
    shutil.copytree(FIXTURE_CONTRIBUTORS, contributors)
    shutil.copytree(FIXTURES / "analyses", analyses)
    return contributors, analyses


def edit(path: Path, **changes: object) -> None:
    """Rewrite a YAML file with keys changed (a value of ... deletes the key)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        key = key.replace("_", "-") if key in {"given_names", "family_names"} else key
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def only_problem(contributors: Path, analyses: Path) -> str:
    problems = authorship.check(contributors, analyses)
    assert len(problems) == 1, problems
    return problems[0]


# --------------------------------------------------------------------------- the valid set


def test_fixture_set_has_no_problems(dirs):
    contributors, analyses = dirs
    assert authorship.check(contributors, analyses) == []
    assert authorship.check(FIXTURE_CONTRIBUTORS, FIXTURES / "analyses") == []


def test_author_order_for_a_fixed_seed_keeps_coordinators_at_the_ends():
    people = authorship.load_contributors(FIXTURE_CONTRIBUTORS)
    order = authorship.author_order(people, seed=12345)
    assert order == [
        "ada-testperson",
        "dmitri-mock",
        "femi-placeholder",
        "gus-dummy",
        "eve-sample",
        "carla-fixture",
        "BenExample",
    ]


def test_build_writes_authors_in_seeded_order_with_numbered_affiliations(dirs, tmp_path):
    contributors, analyses = dirs
    out = tmp_path / "out"
    written = authorship.build(contributors, analyses, out)
    assert sorted(p.name for p in written.values()) == [
        "authors.json",
        "contributions.json",
        "credit.json",
        "credit.md",
    ]
    data = json.loads((out / "authors.json").read_text(encoding="utf-8"))
    assert [a["handle"] for a in data["authors"]] == EXPECTED_ORDER
    assert [a["position"] for a in data["authors"]] == list(range(1, 8))
    # Affiliations are numbered in order of first appearance along the author list.
    assert data["affiliations"] == [
        {
            "number": 1,
            "name": "Department of Imaginary Neuroscience, University of Nowhere, Atlantis",
        },
        {"number": 2, "name": "Institute for Fictional Computation, Example City, Utopia"},
        {"number": 3, "name": "Laboratory of Test Data, Fixture University, Narnia"},
        {"number": 4, "name": "Observatory of Nonexistent Things, Erewhon"},
    ]
    assert {a["handle"]: a["affiliations"] for a in data["authors"]} == {
        "ada-testperson": [1, 2],
        "femi-placeholder": [],
        "eve-sample": [3, 1],
        "dmitri-mock": [1],
        "carla-fixture": [3],
        "gus-dummy": [4],
        "BenExample": [2],
    }
    ada = data["authors"][0]
    assert ada["name"] == "Ada Testperson"
    assert ada["orcid_url"] == "https://orcid.org/0000-0002-1825-0097"
    assert ada["coordinator"] == "first" and data["authors"][-1]["coordinator"] == "last"
    assert data["authors"][4]["orcid"] is None  # Carla has no ORCID iD
    order = data["order"]
    assert order["base_seed"] == 5
    assert order["base_seed_file"].endswith("order-seed.txt")
    assert order["sorted_handles"] == sorted(EXPECTED_ORDER)
    assert order["seed"] == authorship.order_seed(EXPECTED_ORDER, 5)


def test_credit_statement_lists_each_role_in_standard_then_author_order(dirs, tmp_path):
    contributors, analyses = dirs
    authorship.build(contributors, analyses, tmp_path / "out")
    credit = json.loads((tmp_path / "out" / "credit.json").read_text(encoding="utf-8"))
    assert credit["statement"] == (
        "Conceptualization: Ben Example. "
        "Formal analysis: Dmitri Mock. "
        "Investigation: Eve Sample. "
        "Project administration: Ada Testperson. "
        "Software: Femi Placeholder, Eve Sample, Dmitri Mock. "
        "Supervision: Gus Dummy, Ben Example. "
        "Visualization: Carla Fixture. "
        "Writing – original draft: Ada Testperson. "
        "Writing – review & editing: Femi Placeholder."
    )
    assert [r["role"] for r in credit["roles"]][:2] == ["Conceptualization", "Formal analysis"]
    markdown = (tmp_path / "out" / "credit.md").read_text(encoding="utf-8")
    assert "**Software:** Femi Placeholder, Eve Sample, Dmitri Mock." in markdown


def test_contributions_join_modules_figures_sections_and_other_work(dirs, tmp_path):
    contributors, analyses = dirs
    authorship.build(contributors, analyses, tmp_path / "out")
    data = json.loads((tmp_path / "out" / "contributions.json").read_text(encoding="utf-8"))
    people = {p["handle"]: p for p in data["contributors"]}
    assert [p["handle"] for p in data["contributors"]] == EXPECTED_ORDER
    assert people["dmitri-mock"]["modules"] == [
        {"id": "alpha", "title": "Alpha analysis", "as": ["owner"]}
    ]
    assert people["dmitri-mock"]["figures"] == ["alpha_first", "alpha_second"]
    assert people["dmitri-mock"]["sections"] == ["alpha"]
    assert people["BenExample"]["modules"][0]["as"] == ["original author"]
    assert people["femi-placeholder"]["figures"] == ["beta_only"]
    assert people["gus-dummy"]["other"] == [
        {
            "kind": "supervision",
            "description": "Supervised the beta analysis.",
            "of": "femi-placeholder",
            "of_name": "Femi Placeholder",
        }
    ]
    assert people["ada-testperson"]["modules"] == [] and len(people["ada-testperson"]["other"]) == 2
    assert [m["id"] for m in data["modules"]] == ["alpha", "beta"]


def test_rerun_is_byte_identical_and_leaves_no_temp_files(dirs, tmp_path):
    contributors, analyses = dirs
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        authorship.build(contributors, analyses, out, citation=out / "CITATION.cff")
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    assert not [n for n in names if n.endswith(".tmp") or n.startswith(".")]
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


# --------------------------------------------------------------------------- order stability


def test_order_is_stable_when_nothing_changes(dirs):
    contributors, _ = dirs
    people = authorship.load_contributors(contributors)
    runs = [
        authorship.authors_data(authorship.load_contributors(contributors), 5) for _ in range(3)
    ]
    assert runs[0] == runs[1] == runs[2]
    assert [a["handle"] for a in runs[0]["authors"]] == EXPECTED_ORDER
    # Dict insertion order of the input does not matter either.
    reversed_people = dict(reversed(list(people.items())))
    assert [a["handle"] for a in authorship.authors_data(reversed_people, 5)["authors"]] == (
        EXPECTED_ORDER
    )


def test_order_changes_when_the_author_set_changes(dirs):
    contributors, _ = dirs
    (contributors / "hana-newcomer.yaml").write_text(
        "given-names: Hana\nfamily-names: Newcomer\ngithub: null\naffiliations: []\n"
        "roles: [Validation]\ncontributions:\n  - kind: review\n    description: Checked it.\n",
        encoding="utf-8",
    )
    people = authorship.load_contributors(contributors)
    new = [a["handle"] for a in authorship.authors_data(people, 5)["authors"]]
    assert authorship.order_seed(new, 5) != authorship.order_seed(EXPECTED_ORDER, 5)
    assert new[0] == "ada-testperson" and new[-1] == "BenExample"
    # The whole middle is reshuffled, not just the newcomer inserted.
    assert [h for h in new if h != "hana-newcomer"] != EXPECTED_ORDER
    # Changing the recorded base seed reshuffles too.
    del people["hana-newcomer"]
    assert [a["handle"] for a in authorship.authors_data(people, 6)["authors"]] != EXPECTED_ORDER


# --------------------------------------------------------------------------- bad files


def test_bad_orcid_checksum_names_file_field_and_expected_digit(dirs):
    contributors, analyses = dirs
    edit(contributors / "dmitri-mock.yaml", orcid="0000-0000-0000-0029")
    problem = only_problem(contributors, analyses)
    assert problem.startswith(f"{contributors / 'dmitri-mock.yaml'}: orcid: 0000-0000-0000-0029")
    assert "ISO 7064 mod 11-2" in problem and "should be 8" in problem


def test_bad_orcid_format(dirs):
    contributors, analyses = dirs
    edit(contributors / "eve-sample.yaml", orcid="https://orcid.org/0000-0000-0000-0036")
    problem = only_problem(contributors, analyses)
    assert problem.startswith(f"{contributors / 'eve-sample.yaml'}: orcid: ")
    assert "is not an ORCID iD" in problem


def test_unknown_credit_role_suggests_the_closest_valid_name(dirs):
    contributors, analyses = dirs
    edit(contributors / "dmitri-mock.yaml", roles=["Software", "Formal Analysis"])
    assert only_problem(contributors, analyses) == (
        f"{contributors / 'dmitri-mock.yaml'}: roles[1]: unknown CRediT role "
        "'Formal Analysis' (did you mean 'Formal analysis'?)"
    )
    edit(contributors / "dmitri-mock.yaml", roles=["Writing - review and editing"])
    assert only_problem(contributors, analyses).endswith(
        "(did you mean 'Writing – review & editing'?)"
    )


def test_unknown_key(dirs):
    contributors, analyses = dirs
    edit(contributors / "gus-dummy.yaml", email="gus@example.org")
    problem = only_problem(contributors, analyses)
    assert problem.startswith(f"{contributors / 'gus-dummy.yaml'}: email: unknown key")


def test_misspelt_key_suggests_the_real_one(dirs):
    contributors, analyses = dirs
    data = yaml.safe_load((contributors / "gus-dummy.yaml").read_text(encoding="utf-8"))
    data["given_names"] = data.pop("given-names")
    (contributors / "gus-dummy.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    problems = authorship.check(contributors, analyses)
    where = contributors / "gus-dummy.yaml"
    assert f"{where}: given-names: missing required field" in problems
    assert any(
        p.startswith(f"{where}: given_names: unknown key (did you mean 'given-names'?)")
        for p in problems
    )


def test_wrong_type(dirs):
    contributors, analyses = dirs
    edit(contributors / "carla-fixture.yaml", affiliations="Fixture University")
    assert only_problem(contributors, analyses) == (
        f"{contributors / 'carla-fixture.yaml'}: affiliations: must be a list, got a string"
    )


def test_duplicate_orcid(dirs):
    contributors, analyses = dirs
    edit(contributors / "eve-sample.yaml", orcid="0000-0000-0000-0028")  # Dmitri's
    problem = only_problem(contributors, analyses)
    assert problem.startswith(f"{contributors / 'eve-sample.yaml'}: orcid: 0000-0000-0000-0028")
    assert "Dmitri Mock" in problem and "dmitri-mock.yaml" in problem


def test_duplicate_person(dirs):
    contributors, analyses = dirs
    twin = contributors / "adatestperson.yaml"
    shutil.copy(contributors / "ada-testperson.yaml", twin)
    edit(twin, github="adatestperson", orcid=..., coordinator=..., given_names="ada")
    problem = only_problem(contributors, analyses)
    assert problem.startswith(f"{twin}: family-names: ada Testperson already has a file")
    assert "ada-testperson.yaml" in problem


def test_module_owner_without_contributor_file(dirs):
    contributors, analyses = dirs
    edit(analyses / "alpha.yaml", owners=["dmitri-mock", "nobody-here"])
    assert only_problem(contributors, analyses) == (
        f"{analyses / 'alpha.yaml'}: owners[1]: no {contributors / 'nobody-here.yaml'} "
        "for 'nobody-here'"
    )


def test_original_author_with_wrong_case_gets_a_suggestion(dirs):
    contributors, analyses = dirs
    edit(analyses / "alpha.yaml", original_authors=["benexample", "eve-sample"])
    problems = authorship.check(contributors, analyses)
    assert problems == [
        f"{analyses / 'alpha.yaml'}: original_authors[0]: no "
        f"{contributors / 'benexample.yaml'} for 'benexample' (did you mean 'BenExample'?)",
        f"{contributors / 'BenExample.yaml'}: contributions: 'BenExample' is credited for "
        f"nothing: not an owner or original author of any module in {analyses}/, "
        "and no contributions listed",
    ]


def test_uncredited_contributor(dirs):
    contributors, analyses = dirs
    edit(contributors / "carla-fixture.yaml", contributions=...)
    problem = only_problem(contributors, analyses)
    assert problem.startswith(
        f"{contributors / 'carla-fixture.yaml'}: contributions: 'carla-fixture' is credited "
        "for nothing"
    )


def test_two_first_coordinators(dirs):
    contributors, analyses = dirs
    edit(contributors / "eve-sample.yaml", coordinator="first")
    problem = only_problem(contributors, analyses)
    assert problem.startswith(
        f"{contributors / 'eve-sample.yaml'}: coordinator: only one 'first' coordinator"
    )
    assert "Ada Testperson" in problem


def test_handle_must_match_file_name(dirs):
    contributors, analyses = dirs
    edit(contributors / "dmitri-mock.yaml", github="dmitri")
    assert only_problem(contributors, analyses).startswith(
        f"{contributors / 'dmitri-mock.yaml'}: github: 'dmitri' does not match the file name"
    )


def test_people_without_github_need_a_slug_file_name(dirs):
    contributors, analyses = dirs
    (contributors / "carla-fixture.yaml").rename(contributors / "Carla_Fixture.yaml")
    assert only_problem(contributors, analyses).startswith(
        f"{contributors / 'Carla_Fixture.yaml'}: github: is null, so the file name must be a "
        "lowercase slug"
    )


def test_supervision_must_name_an_existing_contributor(dirs):
    contributors, analyses = dirs
    where = contributors / "gus-dummy.yaml"
    edit(where, contributions=[{"kind": "supervision", "description": "Supervised."}])
    assert only_problem(contributors, analyses).startswith(
        f"{where}: contributions[0].of: missing required field"
    )
    edit(where, contributions=[{"kind": "supervision", "description": "S.", "of": "femi"}])
    assert only_problem(contributors, analyses) == (
        f"{where}: contributions[0].of: no contributors/femi.yaml for 'femi'"
    )


def test_yaml_key_written_twice_is_reported(dirs):
    contributors, analyses = dirs
    path = contributors / "gus-dummy.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "roles: [Software]\n", encoding="utf-8")
    problem = only_problem(contributors, analyses)
    assert problem.startswith(f"{path}: (yaml): cannot parse at line ")
    assert "duplicate key 'roles'" in problem


def test_all_problems_are_reported_at_once(dirs):
    contributors, analyses = dirs
    edit(contributors / "dmitri-mock.yaml", orcid="0000-0000-0000-0029")
    edit(contributors / "eve-sample.yaml", roles=["Sofware"], coordinator="last")
    edit(contributors / "gus-dummy.yaml", email="x@example.org")
    edit(contributors / "carla-fixture.yaml", contributions=...)
    edit(analyses / "beta.yaml", owners=["femi-placeholder", "ghost"])
    problems = authorship.check(contributors, analyses)
    fields = sorted(p.split(": ")[1] for p in problems)
    assert fields == ["contributions", "email", "orcid", "owners[1]", "roles[0]"]
    # Eve's file is invalid, so her (second) 'last' coordinator is not double-reported.
    assert any("'Sofware' (did you mean 'Software'?)" in p for p in problems)
    with pytest.raises(AuthorshipError) as info:
        authorship.check_or_raise(contributors, analyses)
    assert str(info.value).splitlines() == problems
    with pytest.raises(AuthorshipError) as info:
        authorship.build(contributors, analyses, contributors.parent / "out")
    assert "\n" not in str(info.value) and "and 4 more problem(s)" in str(info.value)
    assert not (contributors.parent / "out").exists()


def test_load_contributors_raises_with_every_problem(dirs):
    contributors, _ = dirs
    edit(contributors / "dmitri-mock.yaml", orcid="0000-0000-0000-0029")
    edit(contributors / "eve-sample.yaml", coordinator="first")
    with pytest.raises(AuthorshipError) as info:
        authorship.load_contributors(contributors)
    assert len(info.value.problems) == 2


def test_missing_directories_are_problems_not_tracebacks(tmp_path):
    problems = authorship.check(tmp_path / "nope", tmp_path / "none")
    assert problems == [
        f"{tmp_path / 'nope'}: (directory): does not exist",
        f"{tmp_path / 'none'}: (directory): does not exist",
    ]


# --------------------------------------------------------------------------- ORCID and schema


@pytest.mark.parametrize(
    "orcid, valid",
    [
        ("0000-0002-1825-0097", True),
        ("0000-0000-0000-001X", True),
        ("0009-0006-2635-129X", True),
        ("0000-0002-1825-0098", False),
        ("0000-0002-1825-009", False),
        ("0000000218250097", False),
    ],
)
def test_orcid_checksum(orcid, valid):
    assert authorship.is_valid_orcid(orcid) is valid


def test_schema_documents_every_property_and_matches_the_code():
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                assert sub.get("description"), f"{where}.{name} has no description"
            for key, sub in node.items():
                walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}[{i}]")

    walk(schema, "$")
    assert tuple(schema["properties"]["roles"]["items"]["enum"]) == authorship.CREDIT_ROLES
    kinds = schema["$defs"]["contribution"]["properties"]["kind"]["enum"]
    assert tuple(kinds) == authorship.CONTRIBUTION_KINDS
    assert len(authorship.CREDIT_ROLES) == 14


# --------------------------------------------------------------------------- CITATION.cff


def test_citation_cff_validates_against_the_cff_1_2_0_schema(dirs, tmp_path):
    import jsonschema

    contributors, analyses = dirs
    cff = tmp_path / "CITATION.cff"
    authorship.build(contributors, analyses, tmp_path / "out", citation=cff)
    data = yaml.safe_load(cff.read_text(encoding="utf-8"))
    schema = json.loads((FIXTURES / "cff-1.2.0.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker()).validate(data)
    assert data["cff-version"] == "1.2.0" and data["license"] == "MIT"
    assert data["type"] == "software"
    assert [a["family-names"] for a in data["authors"]] == [
        "Testperson",
        "Placeholder",
        "Sample",
        "Mock",
        "Fixture",
        "Dummy",
        "Example",
    ]
    assert data["authors"][0]["orcid"] == "https://orcid.org/0000-0002-1825-0097"
    assert data["authors"][0]["affiliation"] == (
        "Department of Imaginary Neuroscience, University of Nowhere, Atlantis; "
        "Institute for Fictional Computation, Example City, Utopia"
    )
    assert "date-released" not in data  # no wall-clock dates: reruns are byte-identical


def test_citation_cff_validates_with_cffconvert(dirs, tmp_path):
    try:
        from cffconvert import Citation
    except ImportError:
        pytest.skip(
            "cffconvert is not installed (it pins jsonschema<4, so it is not a declared "
            "dependency; the schema test above runs the same check)"
        )
    contributors, analyses = dirs
    cff = tmp_path / "CITATION.cff"
    authorship.build(contributors, analyses, tmp_path / "out", citation=cff)
    Citation(cff.read_text(encoding="utf-8")).validate()


# --------------------------------------------------------------------------- CLI


def run_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """Run ``spikeloc.cli.main``; stub sibling subcommand modules that do not exist yet."""
    for name, functions in {
        "spikeloc.pipeline.commands": ("configure_train_parser", "configure_evaluate_parser"),
        "spikeloc.pipeline.scaffold": ("configure_parser",),
    }.items():
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            stub = types.ModuleType(name)
            for function in functions:
                setattr(stub, function, lambda parser: None)
            monkeypatch.setitem(sys.modules, name, stub)
            monkeypatch.setattr(
                sys.modules["spikeloc"], name.rsplit(".", 1)[1], stub, raising=False
            )
    from spikeloc import cli

    return cli.main(argv)


def test_cli_check_ok(dirs, monkeypatch, capsys):
    contributors, analyses = dirs
    argv = [
        "contributors",
        "check",
        "--contributors",
        str(contributors),
        "--analyses",
        str(analyses),
    ]
    assert run_cli(argv, monkeypatch) == 0
    assert capsys.readouterr().out == "7 contributors, 2 modules: OK\n"


def test_cli_check_lists_problems_and_exits_2(dirs, monkeypatch, capsys):
    contributors, analyses = dirs
    edit(contributors / "dmitri-mock.yaml", orcid="0000-0000-0000-0029")
    edit(contributors / "gus-dummy.yaml", email="x@example.org")
    argv = [
        "contributors",
        "check",
        "--contributors",
        str(contributors),
        "--analyses",
        str(analyses),
    ]
    assert run_cli(argv, monkeypatch) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "2 problem(s) found"
    assert err[0].startswith(f"{contributors / 'dmitri-mock.yaml'}: orcid:")


def test_cli_build_bad_set_exits_2_with_one_line(dirs, monkeypatch, capsys, tmp_path):
    contributors, analyses = dirs
    edit(contributors / "eve-sample.yaml", coordinator="first")
    argv = [
        "contributors",
        "build",
        "--contributors",
        str(contributors),
        "--analyses",
        str(analyses),
        "--out",
        str(tmp_path / "out"),
    ]
    assert run_cli(argv, monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"spikeloc: error: {contributors / 'eve-sample.yaml'}: coordinator:")


def test_cli_build_writes_everything(dirs, monkeypatch, tmp_path):
    contributors, analyses = dirs
    out, cff = tmp_path / "out", tmp_path / "CITATION.cff"
    seed_file = tmp_path / "seed.txt"
    seed_file.write_text("6\n", encoding="utf-8")
    argv = ["contributors", "build", "--contributors", str(contributors)]
    argv += ["--analyses", str(analyses), "--out", str(out), "--citation", str(cff)]
    assert run_cli(argv + ["--seed-file", str(seed_file)], monkeypatch) == 0
    authors = json.loads((out / "authors.json").read_text(encoding="utf-8"))
    assert authors["order"]["base_seed"] == 6 and cff.is_file()
    assert [a["handle"] for a in authors["authors"]] != EXPECTED_ORDER
    seed_file.write_text("seven\n", encoding="utf-8")
    assert run_cli(argv + ["--seed-file", str(seed_file)], monkeypatch) == 2


# --------------------------------------------------------------------------- Typst


def test_typst_functions_render_the_built_json(dirs, tmp_path):
    typst = pytest.importorskip("typst", reason="the typst Python package renders the paper")
    contributors, analyses = dirs
    root = tmp_path / "root"
    authorship.build(contributors, analyses, root / "results" / "authorship")
    (root / "paper").mkdir()
    shutil.copy(REPO / "paper" / "authorship.typ", root / "paper" / "authorship.typ")
    shutil.copy(FIXTURES / "render.typ", root / "render.typ")
    pdf = root / "render.pdf"
    typst.compile(str(root / "render.typ"), output=str(pdf), root=str(root))
    assert pdf.read_bytes().startswith(b"%PDF")
    pypdf = pytest.importorskip("pypdf")
    text = " ".join(page.extract_text() for page in pypdf.PdfReader(pdf).pages)
    text = " ".join(text.split())
    for expected in (
        "Ada Testperson",
        "Observatory of Nonexistent Things",
        "Alpha analysis",
        "Conceptualization: Ben Example.",
        "Supervised the beta analysis.",
    ):
        assert expected in text


# --------------------------------------------------------------------------- the real people

# Original authors of each published analysis (shared/docs/contributors-facts.md), used when
# workflow/analyses/ does not exist yet.
PUBLISHED_ANALYSES = {
    "starting-notebook": ["thesamovar"],
    "quick-start": ["dilayercelik", "KarimHabashy", "ghoshm"],
    "membrane-time-constant": ["ZachFriedenberger", "chen-li", "pfcrowe"],
    "dales-law": ["ghoshm", "GabrielBena", "JoseGomesJPG"],
    "excitatory-only": ["luis-rr"],
    "output-neurons": ["mxhong"],
    "trained-networks": [
        "GabrielBena",
        "josh-bourne",
        "tfiers",
        "zekai-xu",
        "gabryel-mason-williams",
    ],
    "noise-robustness": ["a-dtk"],
    "classification-250hz": ["dilayercelik"],
    "filter-and-fire": ["ido4848"],
    "delay-layer": ["KarimHabashy"],
    "dcls-delays": ["mbalazs98"],
    "tensor-components": ["UmarAbubacar"],
    "brainstem": ["francescodesantis"],
}


def test_real_contributors_pass_check(tmp_path):
    contributors = REPO / "contributors"
    analyses = REPO / "workflow" / "analyses"
    if not analyses.is_dir() or not list(analyses.glob("*.yaml")):
        analyses = tmp_path / "analyses"
        analyses.mkdir()
        for module, handles in PUBLISHED_ANALYSES.items():
            (analyses / f"{module}.yaml").write_text(
                yaml.safe_dump(
                    {"title": module, "owners": [handles[0]], "original_authors": handles}
                ),
                encoding="utf-8",
            )
    assert authorship.check(contributors, analyses) == []
    people = authorship.load_contributors(contributors)
    assert len(people) == 31
    order = authorship.authors_data(
        people, authorship.read_base_seed(contributors / "order-seed.txt")
    )
    handles = [a["handle"] for a in order["authors"]]
    assert handles[0] == "ghoshm" and handles[-1] == "thesamovar"
