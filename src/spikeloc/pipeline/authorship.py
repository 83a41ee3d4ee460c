"""Contributors, author order, CRediT statement and ``CITATION.cff``.

The promise: contribute an analysis module, part of a figure or some text and you are an
author, credited for exactly what you did. Credit is computed, never typed twice:

* ``contributors/<handle>.yaml`` (one file per person, schema
  ``workflow/schemas/contributor.schema.json``) says who someone is, their CRediT roles and
  what they did *outside* modules (writing, supervision, infrastructure, ...);
* ``workflow/analyses/<module>.yaml`` says who owns each module and who wrote the original
  analysis it reproduces (``owners`` + ``original_authors``), which figures it makes and
  which paper section it feeds.

:func:`check` reports every problem across both at once, one line each
(``<file>: <field>: <problem>``); :func:`build` writes the author list, the CRediT
statement, the contributions table and ``CITATION.cff``, byte-identical on every rerun.

Author order: coordinators (``coordinator: first|last``) at the ends; everyone else sorted
by ``sha256(f"{seed}:{handle}")``, where ``seed`` is derived from a base seed recorded in
``contributors/order-seed.txt`` and the sorted set of all handles (:func:`order_seed`). The
order is therefore random but reproducible, and changes only when the author set (or the
recorded base seed) changes.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import os
import re
import sys
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from spikeloc.errors import SpikelocError
from spikeloc.io import atomic_write_bytes
from spikeloc.pipeline import validation
from spikeloc.pipeline.manifests import scan_manifests
from spikeloc.pipeline.validation import read_yaml, show_path

__all__ = [
    "CREDIT_ROLES",
    "CONTRIBUTION_KINDS",
    "AuthorshipError",
    "Contribution",
    "Contributor",
    "Module",
    "orcid_checksum",
    "is_valid_orcid",
    "load_contributors",
    "load_modules",
    "check",
    "check_or_raise",
    "read_base_seed",
    "order_seed",
    "author_order",
    "authors_data",
    "credit_data",
    "credit_markdown",
    "contributions_data",
    "citation_cff",
    "build",
    "configure_parser",
]

#: The 14 CRediT roles (NISO Z39.104-2022), in the standard's order.
CREDIT_ROLES: tuple[str, ...] = (
    "Conceptualization",
    "Data curation",
    "Formal analysis",
    "Funding acquisition",
    "Investigation",
    "Methodology",
    "Project administration",
    "Resources",
    "Software",
    "Supervision",
    "Validation",
    "Visualization",
    "Writing – original draft",
    "Writing – review & editing",
)

#: Kinds of contribution a contributor file may list (modules are credited from manifests).
CONTRIBUTION_KINDS: tuple[str, ...] = (
    "writing",
    "supervision",
    "infrastructure",
    "figure",
    "review",
    "other",
)

#: Where ``contributors build`` looks for the base seed when ``--seed-file`` is not given.
DEFAULT_SEED_FILE_NAME = "order-seed.txt"
DEFAULT_REPOSITORY = "https://github.com/comob-project/snn-sound-localization"
DEFAULT_TITLE = (
    "spikeloc: spiking neural network models of interaural time difference extraction "
    "via a massively collaborative process"
)
DEFAULT_ABSTRACT = (
    "Reproducible Snakemake + papermill + Typst pipeline around a PyTorch spiking neural "
    "network core for sound localisation. It regenerates every figure, number and the PDF of "
    "the COMOB paper 'Spiking neural network models of interaural time difference extraction "
    "via a massively collaborative process' from simulations and training runs."
)

_SCHEMA_RELATIVE = Path("workflow") / "schemas" / "contributor.schema.json"
_ORCID_RE = re.compile(r"^[0-9]{4}-[0-9]{4}-[0-9]{4}-[0-9]{3}[0-9X]$")
_SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_ORDER_DERIVATION = (
    "seed = int(sha256(text).hexdigest()[:16], 16) with text = "
    "'spikeloc author order v1\\nbase seed: <base_seed>\\n' followed by every handle in "
    "sorted_handles, each followed by '\\n' (UTF-8); coordinators take the first/last "
    "places and everyone else is sorted by sha256(f'{seed}:{handle}').hexdigest()"
)


# --------------------------------------------------------------------------- data types


class AuthorshipError(SpikelocError, ValueError):
    """Bad contributor or manifest files; ``problems`` holds every one-line problem.

    ``str()`` is one line (the first problem and how many more) so the CLI can print it;
    with ``full=True`` it is all problems, one per line (used at workflow parse time).
    """

    def __init__(self, problems: Sequence[str], *, full: bool = False):
        self.problems = list(problems)
        if full or len(self.problems) <= 1:
            message = "\n".join(self.problems)
        else:
            message = (
                f"{self.problems[0]} (and {len(self.problems) - 1} more problem(s); "
                "run 'spikeloc contributors check' to list them all)"
            )
        super().__init__(message)


@dataclass(frozen=True)
class Contribution:
    """Something a person did outside analysis modules."""

    kind: str
    description: str
    of: str | None = None


@dataclass(frozen=True)
class Contributor:
    """One ``contributors/<handle>.yaml`` file, validated."""

    handle: str
    given_names: str
    family_names: str
    github: str | None
    affiliations: tuple[str, ...]
    roles: tuple[str, ...]
    orcid: str | None = None
    coordinator: str | None = None
    contributions: tuple[Contribution, ...] = ()
    source: Path | None = None

    @property
    def name(self) -> str:
        """Display name, ``given-names family-names``."""
        return f"{self.given_names} {self.family_names}"

    @property
    def orcid_url(self) -> str | None:
        """``https://orcid.org/<iD>`` or None."""
        return f"https://orcid.org/{self.orcid}" if self.orcid else None


@dataclass(frozen=True)
class Module:
    """The parts of a ``workflow/analyses/<module>.yaml`` manifest that authorship needs."""

    id: str
    title: str
    owners: tuple[str, ...]
    original_authors: tuple[str, ...] = ()
    figures: tuple[str, ...] = ()
    section: str | None = None
    source: Path | None = None

    @property
    def credited(self) -> tuple[str, ...]:
        """Owners then original authors, without repeats: everyone this module credits."""
        return tuple(dict.fromkeys(self.owners + self.original_authors))


# --------------------------------------------------------------------------- ORCID


def orcid_checksum(base_digits: str) -> str:
    """ISO 7064 mod 11-2 check character for the first 15 digits of an ORCID iD."""
    total = 0
    for char in base_digits:
        total = (total + int(char)) * 2
    result = (12 - total % 11) % 11
    return "X" if result == 10 else str(result)


def is_valid_orcid(orcid: str) -> bool:
    """True for a bare ``0000-0000-0000-000X`` iD whose check character is right."""
    if not isinstance(orcid, str) or not _ORCID_RE.match(orcid):
        return False
    digits = orcid.replace("-", "")
    return orcid_checksum(digits[:15]) == digits[15]


# --------------------------------------------------------------------------- helpers


def _normalise_role(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"\s*[-‐‑‒–—]\s*", " – ", text)
    text = text.replace(" and ", " & ")
    return re.sub(r"\s+", " ", text).strip()


def _person_key(given: str, family: str) -> str:
    text = unicodedata.normalize("NFKC", f"{given} {family}").casefold()
    return re.sub(r"\s+", " ", text).strip()


_PATTERN_HINTS = {
    "orcid": "not an ORCID iD: expected the bare form 0000-0000-0000-000X "
    "(four groups of four digits, the last may be X; no https://orcid.org/ prefix)",
    "github": "not a GitHub login (letters, digits and single hyphens, at most 39 characters)",
}


def _role_wording(path: list, value: Any, choices: list[str]) -> str | None:
    if path and path[0] == "roles":
        return f"unknown CRediT role {value!r}{_suggest(value, choices)}"
    return None


def _suggest(value: Any, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest CRediT role, or an empty string."""
    return validation._suggest(value, choices, _normalise_role)


_REQUIRED_HINTS = {
    "of": " (a supervision contribution names whom it supervised)",
    "github": " (your GitHub login, or null if you have none)",
}


def _schema_problems(data: Any, where: str) -> list[str]:
    """The contributor schema's problems, ``<file>: <field>: <problem>`` (with hints)."""
    lines = validation.schema_problems(
        data,
        validation.load_schema("contributor"),
        where,
        pattern_hints=_PATTERN_HINTS,
        normalise=_normalise_role,
        enum_wording=_role_wording,
    )
    out = []
    for line in lines:
        for key, hint in _REQUIRED_HINTS.items():
            if line.endswith(f"{key}: missing required field"):
                line += hint
        out.append(line)
    return out


# --------------------------------------------------------------------------- loading


@dataclass
class _Scan:
    contributors: dict[str, Contributor]  # files that passed their own checks
    present: dict[str, Path]  # every handle that has a file, valid or not
    problems: list[str]


def _scan_contributors(directory: Path) -> _Scan:
    directory = Path(directory)
    scan = _Scan({}, {}, [])
    if not directory.is_dir():
        scan.problems.append(f"{show_path(directory)}: (directory): does not exist")
        return scan
    files = sorted(directory.glob("*.yaml"), key=lambda p: p.name)
    stray = sorted(directory.glob("*.yml"), key=lambda p: p.name)
    for path in stray:
        scan.problems.append(f"{show_path(path)}: (file): contributor files end in .yaml, not .yml")
    if not files:
        scan.problems.append(f"{show_path(directory)}: (directory): no <handle>.yaml files")
        return scan
    for path in files:
        handle = path.stem
        where = show_path(path)
        scan.present[handle] = path
        data, problem = read_yaml(path)
        if problem:
            scan.problems.append(problem)
            continue
        file_problems = _schema_problems(data, where)
        if isinstance(data, dict):
            orcid = data.get("orcid")
            if isinstance(orcid, str) and _ORCID_RE.match(orcid) and not is_valid_orcid(orcid):
                expected = orcid_checksum(orcid.replace("-", "")[:15])
                file_problems.append(
                    f"{where}: orcid: {orcid} fails the ISO 7064 mod 11-2 checksum (the last "
                    f"character should be {expected}); check the iD for a typo"
                )
            github = data.get("github", "")
            if isinstance(github, str) and github != handle:
                file_problems.append(
                    f"{where}: github: {github!r} does not match the file name: "
                    f"rename the file to {github}.yaml or fix the login"
                )
            elif github is None and not _SLUG_RE.match(handle):
                file_problems.append(
                    f"{where}: github: is null, so the file name must be a lowercase slug "
                    f"such as 'ada-testperson', not {handle!r}"
                )
        if file_problems:
            scan.problems.extend(file_problems)
            continue
        scan.contributors[handle] = Contributor(
            handle=handle,
            given_names=data["given-names"].strip(),
            family_names=data["family-names"].strip(),
            github=data["github"],
            affiliations=tuple(" ".join(a.split()) for a in data["affiliations"]),
            roles=tuple(data["roles"]),
            orcid=data.get("orcid"),
            coordinator=data.get("coordinator"),
            contributions=tuple(
                Contribution(c["kind"], " ".join(c["description"].split()), c.get("of"))
                for c in data.get("contributions", [])
            ),
            source=path,
        )
    return scan


def _cross_contributor_problems(scan: _Scan) -> list[str]:
    """Problems between files: duplicates, coordinators, dangling ``of`` references."""
    problems: list[str] = []
    folded: dict[str, str] = {}
    for handle, path in scan.present.items():
        other = folded.setdefault(handle.casefold(), handle)
        if other != handle:
            problems.append(
                f"{show_path(path)}: github: handle {handle!r} differs from {other!r} "
                f"({show_path(scan.present[other])}) only by case; GitHub logins are "
                "case-insensitive, so this is the same person"
            )
    by_name: dict[str, Contributor] = {}
    by_orcid: dict[str, Contributor] = {}
    coordinators: dict[str, Contributor] = {}
    for c in scan.contributors.values():
        where = show_path(c.source) if c.source else c.handle
        key = _person_key(c.given_names, c.family_names)
        if key in by_name:
            first = by_name[key]
            problems.append(
                f"{where}: family-names: {c.name} already has a file "
                f"({show_path(first.source) if first.source else first.handle}); one file per person"
            )
        else:
            by_name[key] = c
        if c.orcid:
            if c.orcid in by_orcid:
                first = by_orcid[c.orcid]
                problems.append(
                    f"{where}: orcid: {c.orcid} is also the ORCID iD of {first.name} "
                    f"({show_path(first.source) if first.source else first.handle})"
                )
            else:
                by_orcid[c.orcid] = c
        if c.coordinator:
            if c.coordinator in coordinators:
                first = coordinators[c.coordinator]
                problems.append(
                    f"{where}: coordinator: only one '{c.coordinator}' coordinator is allowed; "
                    f"{first.name} ({show_path(first.source) if first.source else first.handle}) "
                    "already is"
                )
            else:
                coordinators[c.coordinator] = c
        for i, contribution in enumerate(c.contributions):
            target = contribution.of
            if target is not None and target not in scan.present:
                problems.append(
                    f"{where}: contributions[{i}].of: no contributors/{target}.yaml for "
                    f"{target!r}{_suggest_handle(target, scan.present)}"
                )
    return problems


def _suggest_handle(handle: str, present: Mapping[str, Any]) -> str:
    for known in present:
        if known.casefold() == handle.casefold():
            return f" (did you mean '{known}'?)"
    close = difflib.get_close_matches(handle, list(present), n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


def load_contributors(directory: str | os.PathLike[str]) -> dict[str, Contributor]:
    """Read and validate every ``<handle>.yaml`` in ``directory``, keyed by handle.

    Raises :class:`AuthorshipError` listing every problem found in the files themselves or
    between them (duplicates, coordinators, references). Module credit is not checked here:
    use :func:`check` for that.
    """
    scan = _scan_contributors(Path(directory))
    problems = scan.problems + _cross_contributor_problems(scan)
    if problems:
        raise AuthorshipError(problems)
    return dict(sorted(scan.contributors.items()))


def _scan_modules(directory: Path) -> tuple[dict[str, Module], list[str]]:
    """The credit-relevant part of every checked manifest (:mod:`spikeloc.pipeline.manifests`)."""
    manifests, problems = scan_manifests(directory)
    modules = {
        name: Module(
            id=name,
            title=m["title"],
            owners=tuple(m["owners"]),
            original_authors=tuple(m["original_authors"]),
            figures=tuple(f["id"] for f in m["figures"]),
            section=m.get("section") or None,
            source=Path(m.source),
        )
        for name, m in manifests.items()
    }
    return modules, problems


def load_modules(directory: str | os.PathLike[str]) -> dict[str, Module]:
    """Read the authorship-relevant part of every ``<module>.yaml`` manifest in ``directory``.

    Only ``owners``/``original_authors`` (lists of handles), ``title``, ``figures[].id`` and
    ``section`` are read; the rest of the manifest is the pipeline's business. Raises
    :class:`AuthorshipError` if those fields are malformed.
    """
    modules, problems = _scan_modules(Path(directory))
    if problems:
        raise AuthorshipError(problems)
    return modules


# --------------------------------------------------------------------------- checking


def check(
    contributors_dir: str | os.PathLike[str], analyses_dir: str | os.PathLike[str]
) -> list[str]:
    """Every problem with the contributor files and the module credits, one line each.

    Each line reads ``<file>: <field>: <problem>``. Covers schema violations (unknown key,
    missing field, wrong type, unknown CRediT role with the closest valid name), ORCID format
    and checksum, handle/file-name mismatch, duplicate people and ORCID iDs, more than one
    first/last coordinator, module owners and original authors without a contributor file,
    and contributors credited for nothing. An empty list means all is well.
    """
    contributors_dir = Path(contributors_dir)
    scan = _scan_contributors(contributors_dir)
    problems = scan.problems + _cross_contributor_problems(scan)
    modules, module_problems = _scan_modules(Path(analyses_dir))
    problems += module_problems
    credited: set[str] = set()
    for module in modules.values():
        where = show_path(module.source) if module.source else module.id
        for key, handles in (
            ("owners", module.owners),
            ("original_authors", module.original_authors),
        ):
            for i, handle in enumerate(handles):
                credited.add(handle)
                if handle not in scan.present:
                    problems.append(
                        f"{where}: {key}[{i}]: no "
                        f"{show_path(contributors_dir / (handle + '.yaml'))} for {handle!r}"
                        f"{_suggest_handle(handle, scan.present)}"
                    )
    for handle, c in scan.contributors.items():
        if handle not in credited and not c.contributions:
            problems.append(
                f"{show_path(c.source) if c.source else handle}: contributions: {handle!r} is "
                f"credited for nothing: not an owner or original author of any module in "
                f"{show_path(Path(analyses_dir))}/, and no contributions listed"
            )
    return problems


def check_or_raise(
    contributors_dir: str | os.PathLike[str], analyses_dir: str | os.PathLike[str]
) -> None:
    """Run :func:`check`; raise :class:`AuthorshipError` listing all problems, one per line.

    Meant for the workflow's ``common.smk`` so a bad contributor file fails at parse time,
    before any job runs.
    """
    problems = check(contributors_dir, analyses_dir)
    if problems:
        raise AuthorshipError(problems, full=True)


# --------------------------------------------------------------------------- ordering


def read_base_seed(path: str | os.PathLike[str]) -> int:
    """The integer base seed in ``path``: its first line that is not blank or a ``#`` comment."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SpikelocError(f"{show_path(path)}: (file): cannot read: {exc.strerror}") from exc
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if text:
            try:
                return int(text)
            except ValueError:
                raise SpikelocError(
                    f"{show_path(path)}: base seed: must be an integer, got {text!r}"
                ) from None
    raise SpikelocError(f"{show_path(path)}: base seed: no integer found")


def order_seed(handles: Iterable[str], base_seed: int = 0) -> int:
    """Shuffle seed for an author set: a hash of the base seed and the sorted handles.

    Same set and base seed, same seed; add or remove anyone and the seed changes.
    """
    text = f"spikeloc author order v1\nbase seed: {base_seed}\n"
    text += "".join(f"{handle}\n" for handle in sorted(set(handles)))
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:16], 16)


def author_order(contributors: Mapping[str, Contributor], seed: int) -> list[str]:
    """Handles in author order: first coordinator, the rest shuffled by ``seed``, last coordinator.

    The shuffle sorts by ``sha256(f"{seed}:{handle}")``, which is reproducible in any language
    and independent of Python's ``random`` implementation.
    """
    first = [h for h, c in contributors.items() if c.coordinator == "first"]
    last = [h for h, c in contributors.items() if c.coordinator == "last"]
    for position, holders in (("first", first), ("last", last)):
        if len(holders) > 1:
            raise AuthorshipError(
                [f"coordinator: more than one '{position}' coordinator: {', '.join(holders)}"]
            )
    middle = sorted(
        (h for h in contributors if h not in first and h not in last),
        key=lambda h: (hashlib.sha256(f"{seed}:{h}".encode()).hexdigest(), h),
    )
    return first + middle + last


# --------------------------------------------------------------------------- outputs


def authors_data(
    contributors: Mapping[str, Contributor],
    base_seed: int = 0,
    base_seed_file: str | None = None,
) -> dict[str, Any]:
    """The ``authors.json`` document: ordered authors with numbered affiliations and the seed."""
    handles = sorted(contributors)
    seed = order_seed(handles, base_seed)
    order = author_order(contributors, seed)
    numbers: dict[str, int] = {}
    authors = []
    for position, handle in enumerate(order, start=1):
        c = contributors[handle]
        for affiliation in c.affiliations:
            numbers.setdefault(affiliation, len(numbers) + 1)
        authors.append(
            {
                "position": position,
                "handle": handle,
                "name": c.name,
                "given_names": c.given_names,
                "family_names": c.family_names,
                "orcid": c.orcid,
                "orcid_url": c.orcid_url,
                "github": c.github,
                "affiliations": [numbers[a] for a in c.affiliations],
                "coordinator": c.coordinator,
                "roles": [r for r in CREDIT_ROLES if r in c.roles],
            }
        )
    return {
        "authors": authors,
        "affiliations": [{"number": n, "name": name} for name, n in numbers.items()],
        "order": {
            "policy": "coordinators first/last, everyone else shuffled by a recorded seed",
            "base_seed": base_seed,
            "base_seed_file": base_seed_file,
            "sorted_handles": handles,
            "seed": seed,
            "derivation": _ORDER_DERIVATION,
        },
    }


def credit_data(contributors: Mapping[str, Contributor], order: Sequence[str]) -> dict[str, Any]:
    """The ``credit.json`` document: for each CRediT role in use, its people in author order."""
    roles = []
    for role in CREDIT_ROLES:
        people = [
            {"handle": h, "name": contributors[h].name}
            for h in order
            if role in contributors[h].roles
        ]
        if people:
            roles.append({"role": role, "authors": people})
    statement = " ".join(
        f"{entry['role']}: {', '.join(p['name'] for p in entry['authors'])}." for entry in roles
    )
    return {"roles": roles, "statement": statement}


def credit_markdown(credit: Mapping[str, Any]) -> str:
    """``credit.md``: the CRediT statement as Markdown, one role per paragraph."""
    lines = ["# CRediT author statement", ""]
    lines.append("Generated by `spikeloc contributors build` from `contributors/*.yaml`.")
    lines.append("")
    for entry in credit["roles"]:
        names = ", ".join(p["name"] for p in entry["authors"])
        lines.append(f"**{entry['role']}:** {names}.")
        lines.append("")
    return "\n".join(lines)


def contributions_data(
    contributors: Mapping[str, Contributor],
    modules: Mapping[str, Module],
    order: Sequence[str],
) -> dict[str, Any]:
    """The ``contributions.json`` document: each person's modules, figures, sections, other."""
    people = []
    for position, handle in enumerate(order, start=1):
        c = contributors[handle]
        mine = []
        figures: list[str] = []
        sections: list[str] = []
        for module in sorted(modules.values(), key=lambda m: m.id):
            capacities = []
            if handle in module.owners:
                capacities.append("owner")
            if handle in module.original_authors:
                capacities.append("original author")
            if not capacities:
                continue
            mine.append({"id": module.id, "title": module.title, "as": capacities})
            figures += [f for f in module.figures if f not in figures]
            if module.section and module.section not in sections:
                sections.append(module.section)
        other = []
        for contribution in c.contributions:
            entry: dict[str, Any] = {
                "kind": contribution.kind,
                "description": contribution.description,
            }
            if contribution.of is not None:
                entry["of"] = contribution.of
                target = contributors.get(contribution.of)
                entry["of_name"] = target.name if target else contribution.of
            other.append(entry)
        people.append(
            {
                "position": position,
                "handle": handle,
                "name": c.name,
                "modules": mine,
                "figures": figures,
                "sections": sections,
                "other": other,
            }
        )
    return {
        "contributors": people,
        "modules": [
            {
                "id": m.id,
                "title": m.title,
                "owners": list(m.owners),
                "original_authors": list(m.original_authors),
                "figures": list(m.figures),
                "section": m.section,
            }
            for m in sorted(modules.values(), key=lambda m: m.id)
        ],
    }


def citation_cff(
    contributors: Mapping[str, Contributor],
    order: Sequence[str],
    *,
    title: str = DEFAULT_TITLE,
    repository: str = DEFAULT_REPOSITORY,
    abstract: str = DEFAULT_ABSTRACT,
) -> str:
    """``CITATION.cff`` text (CFF 1.2.0) with the authors in author order; no dates, so reruns
    are byte-identical."""
    authors = []
    for handle in order:
        c = contributors[handle]
        person: dict[str, Any] = {"given-names": c.given_names, "family-names": c.family_names}
        if c.orcid_url:
            person["orcid"] = c.orcid_url
        if c.affiliations:
            person["affiliation"] = "; ".join(c.affiliations)
        if c.github:
            person["alias"] = c.github
        authors.append(person)
    document = {
        "cff-version": "1.2.0",
        "message": "If you use this software, please cite it using these metadata.",
        "type": "software",
        "title": title,
        "abstract": abstract,
        "authors": authors,
        "repository-code": repository,
        "license": "MIT",
        "keywords": [
            "spiking neural networks",
            "sound localisation",
            "interaural time difference",
            "surrogate gradient",
            "collaborative science",
        ],
    }
    header = (
        "# Generated by 'spikeloc contributors build' from contributors/*.yaml and\n"
        "# workflow/analyses/*.yaml. Do not edit by hand: edit your contributor file.\n"
    )
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=4096)
    return header + body


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (``spikeloc.io``: keeps the file's mode)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _json_text(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def build(
    contributors_dir: str | os.PathLike[str],
    analyses_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    citation: str | os.PathLike[str] | None = None,
    seed_file: str | os.PathLike[str] | None = None,
    repository: str = DEFAULT_REPOSITORY,
    title: str = DEFAULT_TITLE,
) -> dict[str, Path]:
    """Check, then write ``authors.json``, ``credit.json``, ``credit.md``, ``contributions.json``
    into ``out_dir`` (and ``citation`` if given), atomically. Returns the written paths.

    ``seed_file`` holds the base seed; by default ``<contributors_dir>/order-seed.txt`` if it
    exists, else base seed 0. Raises :class:`AuthorshipError` if :func:`check` finds problems.
    """
    contributors_dir = Path(contributors_dir)
    problems = check(contributors_dir, analyses_dir)
    if problems:
        raise AuthorshipError(problems)
    contributors = load_contributors(contributors_dir)
    modules = load_modules(analyses_dir)
    if seed_file is None and (contributors_dir / DEFAULT_SEED_FILE_NAME).is_file():
        seed_file = contributors_dir / DEFAULT_SEED_FILE_NAME
    base_seed = read_base_seed(seed_file) if seed_file is not None else 0
    shown_seed_file = Path(show_path(Path(seed_file))).as_posix() if seed_file is not None else None
    authors = authors_data(contributors, base_seed, shown_seed_file)
    order = [a["handle"] for a in authors["authors"]]
    credit = credit_data(contributors, order)
    out_dir = Path(out_dir)
    written = {
        "authors": out_dir / "authors.json",
        "credit": out_dir / "credit.json",
        "credit_md": out_dir / "credit.md",
        "contributions": out_dir / "contributions.json",
    }
    _write_atomic(written["authors"], _json_text(authors))
    _write_atomic(written["credit"], _json_text(credit))
    _write_atomic(written["credit_md"], credit_markdown(credit))
    _write_atomic(
        written["contributions"], _json_text(contributions_data(contributors, modules, order))
    )
    if citation is not None:
        written["citation"] = Path(citation)
        text = citation_cff(contributors, order, title=title, repository=repository)
        _write_atomic(written["citation"], text)
    return written


# --------------------------------------------------------------------------- CLI


def _cmd_check(args: argparse.Namespace) -> int:
    problems = check(args.contributors, args.analyses)
    if problems:
        for line in problems:
            print(line, file=sys.stderr)
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return 2
    contributors = load_contributors(args.contributors)
    modules = load_modules(args.analyses)
    print(f"{len(contributors)} contributors, {len(modules)} modules: OK")
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    written = build(
        args.contributors,
        args.analyses,
        args.out,
        citation=args.citation,
        seed_file=args.seed_file,
        repository=args.repository,
        title=args.title,
    )
    for path in written.values():
        print(f"wrote {show_path(path)}")
    return 0


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add ``check`` and ``build`` under ``spikeloc contributors``."""
    parser.description = "Validate contributor files and build the author list and credits."
    sub = parser.add_subparsers(dest="contributors_command", required=True, metavar="ACTION")

    def add_dirs(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--contributors",
            type=Path,
            default=Path("contributors"),
            metavar="DIR",
            help="folder of <handle>.yaml contributor files (default: contributors)",
        )
        p.add_argument(
            "--analyses",
            type=Path,
            default=Path("workflow/analyses"),
            metavar="DIR",
            help="folder of <module>.yaml manifests (default: workflow/analyses)",
        )

    p_check = sub.add_parser(
        "check", help="list every problem in contributor files and module credits (exit 2)"
    )
    add_dirs(p_check)
    p_check.set_defaults(func=_cmd_check)

    p_build = sub.add_parser(
        "build", help="write authors.json, credit.json/.md, contributions.json, CITATION.cff"
    )
    add_dirs(p_build)
    p_build.add_argument(
        "--out",
        type=Path,
        default=Path("results/authorship"),
        metavar="DIR",
        help="output folder (default: results/authorship)",
    )
    p_build.add_argument(
        "--citation",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write a CITATION.cff here (default: don't)",
    )
    p_build.add_argument(
        "--seed-file",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"file holding the integer base seed of the author shuffle (default: "
        f"<contributors>/{DEFAULT_SEED_FILE_NAME} if present, else 0)",
    )
    p_build.add_argument(
        "--repository",
        default=DEFAULT_REPOSITORY,
        metavar="URL",
        help=f"repository-code URL for CITATION.cff (default: {DEFAULT_REPOSITORY})",
    )
    p_build.add_argument(
        "--title", default=DEFAULT_TITLE, help="title for CITATION.cff (default: %(default)s)"
    )
    p_build.set_defaults(func=_cmd_build)
