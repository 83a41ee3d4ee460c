"""The workflow's config and the module manifests: loaded, validated, expanded -- in one place.

Used by the Snakefile (``workflow/rules/common.smk``), the paper build, authorship, the
variables and claims, and figure saving, so that every reader sees the same checked manifests
and every problem is one line ``<file>: <field>: <problem>``::

    workflow/analyses/dales_law.yaml: sweeps.ratio.grid.model.dale.inhibitory_fraction: 1.5: must be in [0, 1]

A broken manifest names itself (and each of its problems); the other modules' problems are
listed too, so one run of ``snakemake -n`` shows everything to fix.

* :func:`load_manifests` -- every ``workflow/analyses/<module>.yaml``, schema-checked
  (``workflow/schemas/manifest.schema.json``), with defaults, cross-checked (figure ids unique
  across modules, claims naming declared variables, runs and sweeps that expand into valid run
  configs at both scales) and, with ``check_files``, its notebook, section and data files;
* :func:`load_config` -- the Snakemake config (``config/config.yaml`` + ``config/quick.yaml``),
  schema-checked, with defaults;
* :func:`load_project` -- both, expanded at the config's scale into runs, chunks and the paths
  of every output (:class:`Project`).
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spikeloc.pipeline import sweeps as sw
from spikeloc.pipeline.validation import (
    ProblemsError,
    load_schema,
    read_yaml,
    schema_problems,
    show_path,
    type_name,
    with_defaults,
)

__all__ = [
    "ANALYSES_DIR",
    "Manifest",
    "Project",
    "load_config",
    "load_manifest",
    "load_manifests",
    "load_project",
    "scan_manifests",
]

ANALYSES_DIR = Path("workflow") / "analyses"
NOTEBOOKS_DIR = Path("workflow") / "notebooks"
SECTIONS_DIR = Path("paper") / "sections"
_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_SNAKE = "not lowercase snake case (letters, digits and single underscores, e.g. basic_model)"
_PATTERN_HINTS = {
    _NAME.pattern: _SNAKE,
    "^((stimulus|model|training)(\\.[a-z][a-z0-9_]*)+|params(\\.[A-Za-z_][A-Za-z0-9_]*)+)$": (
        "not a run-config key written block.field (e.g. model.tau_hidden_s) nor a task's "
        "params.<key>"
    ),
    "^spikeloc(\\.[a-z_][a-z0-9_]*)+:[A-Za-z_][A-Za-z0-9_]*$": (
        "not a task: spikeloc.<module>:<function> (e.g. spikeloc.analysis.reservoir:train)"
    ),
}
#: Notebook parameters the workflow passes (each only if the parameters cell defines it).
STANDARD_PARAMETERS = (
    "module",
    "scale",
    "runs",
    "sweeps",
    "figures_dir",
    "variables_path",
    "notebook_path",
    "config_hash",
)


@dataclass
class Manifest:
    """One module's checked manifest (``data``, schema defaults filled in)."""

    name: str
    source: str  # the manifest file, as messages show it
    data: dict[str, Any]
    notebook: str = ""
    notebook_parameters: frozenset[str] = frozenset()
    # the runs and sweeps, expanded at each scale
    runs: dict[str, dict[str, sw.RunSpec]] = field(default_factory=dict)
    sweeps: dict[str, dict[str, list[sw.RunSpec]]] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


def notebook_parameters(path: str | Path) -> frozenset[str] | None:
    """Names assigned in the notebook's cell tagged ``parameters`` (None if it has none)."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            names = set()
            for node in ast.parse("".join(cell.get("source", []))).body:
                targets = getattr(node, "targets", None) or [getattr(node, "target", None)]
                names.update(t.id for t in targets if isinstance(t, ast.Name))
            return frozenset(names)
    return None


def _check_module(m: Manifest, root: Path, check_files: bool) -> list[str]:
    """Problems of one schema-valid manifest: expansions, claims and (optionally) files."""
    where, data = m.source, m.data
    problems: list[str] = []
    declared = {v["name"] for v in data["variables"]}
    for i, claim in enumerate(data["claims"]):
        for field_name in ("variable", "a", "b"):
            var = claim.get(field_name)
            if var is not None and "." not in var and var not in declared:
                problems.append(
                    f"{where}: claims[{i}].{field_name}: {var!r} is not in this module's variables"
                )
    for scale in sw.SCALES:
        try:
            m.runs[scale], m.sweeps[scale] = sw.expand_module(m.name, data, scale, where=where)
        except sw.ExpansionError as exc:
            at = "" if scale == "paper" else " (at quick scale)"
            problems.append(f"{where}: {exc.field}: {exc.problem}{at}")
            break
    if not check_files:
        return problems
    nb = NOTEBOOKS_DIR / f"{m.name}.ipynb"
    if not (root / nb).is_file():
        return [*problems, f"{where}: (notebook): {nb} does not exist"]
    params = notebook_parameters(root / nb)
    if params is None:
        return [*problems, f"{nb}: (parameters cell): no cell is tagged 'parameters'"]
    m.notebook, m.notebook_parameters = str(nb), params
    for block, given in (
        ("parameters", data["parameters"]),
        ("quick.parameters", data["quick"]["parameters"]),
    ):
        for key in given:
            if key not in params:
                problems.append(
                    f"{where}: {block}.{key}: not a name of the parameters cell of {nb} "
                    f"(known: {', '.join(sorted(params))})"
                )
    for i, path in enumerate(data["data"]):
        if not (root / path).is_file():
            problems.append(f"{where}: data[{i}]: {path} does not exist")
    section = data.get("section")
    if section and not (root / SECTIONS_DIR / f"{section}.typ").is_file():
        problems.append(f"{where}: section: {SECTIONS_DIR}/{section}.typ does not exist")
    return problems


def _read_manifest(path: Path, schema: dict, root: Path, check_files: bool):
    """``(manifest or None, problems)`` of one file."""
    where = show_path(path)
    if not _NAME.match(path.stem):
        return None, [f"{where}: (file name): a module name is lowercase snake case"]
    data, problem = read_yaml(path)
    if problem:
        return None, [problem]
    if not isinstance(data, dict):
        return None, [f"{where}: (document): must be a mapping, got {type_name(data)}"]
    bad = schema_problems(data, schema, where, pattern_hints=_PATTERN_HINTS)
    if bad:
        return None, bad
    m = Manifest(path.stem, where, with_defaults(data, schema))
    return m, _check_module(m, root, check_files)


def load_manifest(
    module: str, analyses_dir: str | Path = ANALYSES_DIR, *, root: str | Path = "."
) -> Manifest:
    """One module's manifest, checked on its own; raises :class:`ProblemsError`."""
    root = Path(root)
    path = Path(analyses_dir) / f"{module}.yaml"
    path = path if path.is_absolute() else root / path
    if not path.is_file():
        raise ProblemsError([f"{show_path(path)}: (file): no manifest for module {module!r}"])
    m, problems = _read_manifest(path, load_schema("manifest", root), root, False)
    if problems or m is None:
        raise ProblemsError(problems)
    return m


def scan_manifests(
    analyses_dir: str | Path = ANALYSES_DIR, *, root: str | Path = ".", check_files: bool = False
) -> tuple[dict[str, Manifest], list[str]]:
    """``(valid manifests by module name, every problem found)``: nothing raises, so one bad
    manifest does not hide another's problems."""
    root = Path(root)
    directory = Path(analyses_dir)
    directory = directory if directory.is_absolute() else root / directory
    problems: list[str] = []
    out: dict[str, Manifest] = {}
    if not directory.is_dir():
        return out, [f"{show_path(directory)}: (directory): does not exist"]
    schema = load_schema("manifest", root)
    figure_owner: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        m, own = _read_manifest(path, schema, root, check_files)
        if m is None:
            problems += own
            continue
        for i, fig in enumerate(m.data["figures"]):
            other = figure_owner.setdefault(fig["id"], m.name)
            if other != m.name:
                own.append(
                    f"{m.source}: figures[{i}].id: {fig['id']!r} is already made by module {other!r}"
                )
        problems += own
        if not own:
            out[m.name] = m
    for stray in sorted(directory.glob("*.yml")):
        problems.append(f"{show_path(stray)}: (file): manifests end in .yaml, not .yml")
    return out, problems


def load_manifests(
    analyses_dir: str | Path = ANALYSES_DIR, *, root: str | Path = ".", check_files: bool = False
) -> dict[str, Manifest]:
    """Every manifest, checked; raises :class:`ProblemsError` listing every problem."""
    manifests, problems = scan_manifests(analyses_dir, root=root, check_files=check_files)
    if problems:
        raise ProblemsError(problems)
    return manifests


def load_config(
    config: Mapping[str, Any], source: str | Mapping[str, str], *, root: str | Path = "."
) -> dict:
    """The workflow config with every default filled in; raises :class:`ProblemsError`.

    ``source`` names where the config came from: one name, or (from :func:`config_sources`)
    the place that set each top-level key, so every problem names the file, or ``--config``,
    that holds the bad value.
    """
    schema = load_schema("config", root)
    if isinstance(source, str):
        problems = schema_problems(dict(config), schema, source)
    else:
        marker = "\x00config"
        problems = [
            _attribute(line, marker, source)
            for line in schema_problems(dict(config), schema, marker)
        ]
    if problems:
        raise ProblemsError(problems)
    return with_defaults(dict(config), schema)


def _attribute(line: str, marker: str, sources: Mapping[str, str]) -> str:
    rest = line[len(marker) + 2 :]
    parts = re.split(r"\.|\[", rest.split(": ", 1)[0])
    for n in range(len(parts), 0, -1):  # the longest key path some source set
        where = sources.get(".".join(parts[:n]))
        if where:
            return f"{where}: {rest}"
    return f"{sources.get('', 'config')}: {rest}"


# --------------------------------------------------------------------------- the project


@dataclass
class Project:
    """The config and manifests expanded at one scale: every run, chunk and output path."""

    config: dict[str, Any]
    config_source: str
    modules: dict[str, Manifest]
    code_hash: str

    @property
    def scale(self) -> str:
        return self.config["scale"]

    # ------------------------------------------------------------------ paths
    @property
    def results(self) -> str:
        return sw.results_dir(self.scale)

    @property
    def figures_dir(self) -> str:
        return sw.figures_dir(self.scale)

    @property
    def logs(self) -> str:
        return f"logs/{self.scale}"

    @property
    def paper_pdf(self) -> str:
        return f"paper/build/{self.scale}/paper.pdf"

    def runs(self, module: str) -> dict[str, sw.RunSpec]:
        return self.modules[module].runs[self.scale]

    def sweeps(self, module: str) -> dict[str, list[sw.RunSpec]]:
        return self.modules[module].sweeps[self.scale]

    def chunk_size(self, module: str, group: str) -> int:
        return group_chunk_size(self.modules[module], group, self.config["train"]["chunk_size"])

    def chunks(self, module: str | None = None) -> list[sw.Chunk]:
        """The training chunks of one module (or all): its single runs, then each sweep."""
        out = []
        for name in [module] if module else sorted(self.modules):
            out += module_chunks(self.modules[name], self.scale, self.config["train"]["chunk_size"])
        return out

    def chunk(self, chunk_id: str) -> sw.Chunk:
        return self._chunk_index()[chunk_id]

    def _chunk_index(self) -> dict[str, sw.Chunk]:
        if not hasattr(self, "_chunks"):
            self._chunks = {c.id: c for c in self.chunks()}
        return self._chunks

    def chunk_spec_path(self, chunk: sw.Chunk) -> str:
        return f"{self.results}/chunks/{chunk.module}/{chunk.group}.{chunk.index}.spec.json"

    def chunk_result_path(self, chunk: sw.Chunk) -> str:
        return f"{self.results}/chunks/{chunk.module}/{chunk.group}.{chunk.index}.json"

    def sweep_table_path(self, module: str, sweep: str) -> str:
        return sw.sweep_table_path(module, sweep, self.scale)

    def variables_path(self, module: str) -> str:
        return sw.variables_path(module, self.scale)

    def figure_paths(self, module: str, exts=("pdf", "png", "json"), only_paper=False) -> list[str]:
        out = []
        for fig in self.modules[module]["figures"]:
            if only_paper and not fig.get("in_paper", True):
                continue
            out += [f"{self.figures_dir}/{fig['id']}.{ext}" for ext in exts]
        return out

    # ------------------------------------------------------------------ jobs
    def run_device(self, run: sw.RunSpec) -> str:
        return run.device or self.config["device"]

    def chunk_device(self, chunk: sw.Chunk) -> str:
        return self.run_device(chunk.runs[0])

    def chunk_resource(self, chunk: sw.Chunk, key: str) -> int:
        """threads / mem_mb / runtime (minutes: per run times the chunk's runs)."""
        own = self.modules[chunk.module]["train"].get(key)
        value = own if own is not None else self.config["train"][key]
        return value * len(chunk.runs) if key == "runtime" else value

    def analysis_resource(self, module: str, key: str) -> int:
        own = self.modules[module]["resources"].get(key)
        return own if own is not None else self.config["analysis"][key]

    def notebook_parameters(self, module: str) -> dict[str, Any]:
        """The papermill parameters of a module's notebook at this scale."""
        m = self.modules[module]
        params = {
            "module": module,
            "scale": self.scale,
            "runs": {name: run.path for name, run in self.runs(module).items()},
            "sweeps": {s: self.sweep_table_path(module, s) for s in self.sweeps(module)},
            "figures_dir": self.figures_dir,
            "variables_path": self.variables_path(module),
            "notebook_path": m.notebook,
            "config_hash": self.module_fingerprint(module),
        }
        params = {k: v for k, v in params.items() if k in m.notebook_parameters}
        params.update(m["parameters"])
        if self.scale == "quick":
            params.update(m["quick"]["parameters"])
        return params

    def module_fingerprint(self, module: str) -> str:
        """Short hash of what a module's results depend on: its runs, code and settings."""
        runs = [
            *self.runs(module).values(),
            *(r for rs in self.sweeps(module).values() for r in rs),
        ]
        blob = {
            "runs": {r.path: r.config_text for r in runs},
            "code": sorted({r.code_hash(self.code_hash) for r in runs}) if runs else None,
            "parameters": self.notebook_parameters_settings(module),
        }
        return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:12]

    def notebook_parameters_settings(self, module: str) -> dict[str, Any]:
        m = self.modules[module]
        return {**m["parameters"], **(m["quick"]["parameters"] if self.scale == "quick" else {})}


def group_chunk_size(manifest: Manifest, group: str, default: int) -> int:
    """Runs per chunk of a group: the sweep's own, else the module's, else ``default``."""
    own = manifest["sweeps"][group].get("chunk_size") if group in manifest["sweeps"] else None
    return own or manifest["train"].get("chunk_size") or default


def module_chunks(manifest: Manifest, scale: str, default_chunk_size: int) -> list[sw.Chunk]:
    """A module's training chunks at one scale: its single runs, then each sweep in order."""
    groups = [(sw.SINGLE_RUNS, list(manifest.runs[scale].values()))]
    groups += list(manifest.sweeps[scale].items())
    out = []
    for group, runs in groups:
        if runs:
            size = group_chunk_size(manifest, group, default_chunk_size)
            out += sw.chunks(manifest.name, group, runs, size)
    return out


def load_project(
    config: Mapping[str, Any],
    source: str | Mapping[str, str],
    *,
    root: str | Path = ".",
    analyses_dir: str | Path = ANALYSES_DIR,
    code_hash: str | None = None,
) -> Project:
    """Config + manifests + code hash: everything the workflow generates its rules from.
    Raises :class:`ProblemsError` with every problem of the config and every manifest."""
    from spikeloc.pipeline.codehash import code_hash as _code_hash

    problems: list[str] = []
    try:
        cfg = load_config(config, source, root=root)
    except ProblemsError as exc:
        problems += exc.problems
        cfg = None
    manifests, more = scan_manifests(analyses_dir, root=root, check_files=True)
    problems += more
    if problems:
        raise ProblemsError(problems)
    label = source if isinstance(source, str) else source.get("", "config")
    return Project(cfg, label, manifests, code_hash or _code_hash())


def config_sources(
    files: Sequence[str], command_line: Mapping[str, Any] | None = None, root: str | Path = "."
) -> dict[str, str]:
    """Where each config key path (``train``, ``train.chunk_size``) was set: the last config
    file that holds it, or ``--config`` for keys given on the command line; ``""`` maps to all
    the files together (for problems of keys no source holds, e.g. a missing one)."""
    here = Path(root).resolve()
    out: dict[str, str] = {"": config_source(files, root)}
    for f in files or ["config/config.yaml"]:
        p = Path(f).resolve()
        name = str(p.relative_to(here)) if p.is_relative_to(here) else str(f)
        try:
            data, _ = read_yaml(p)
        except Exception:  # unreadable files are reported by snakemake itself
            continue
        out.update({key: name for key in _key_paths(data)})
    out.update({key: "--config" for key in _key_paths(dict(command_line or {}))})
    return out


def _key_paths(data: Any, prefix: str = "") -> list[str]:
    """Every dotted key path of a nested mapping: ``{"a": {"b": 1}}`` -> ``["a", "a.b"]``."""
    if not isinstance(data, Mapping):
        return []
    out = []
    for k, v in data.items():
        key = f"{prefix}{k}"
        out += [key, *_key_paths(v, key + ".")]
    return out


def config_source(files: Sequence[str], root: str | Path = ".") -> str:
    """The config files in effect as messages name them, the workflow's own first."""
    here = Path(root).resolve()
    out = []
    for f in files or ["config/config.yaml"]:
        p = Path(f).resolve()
        out.append(str(p.relative_to(here)) if p.is_relative_to(here) else str(f))
    out = sorted(dict.fromkeys(out), key=lambda f: f != "config/config.yaml")
    return " + ".join(out)
