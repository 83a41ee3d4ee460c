# Loading, validation and input functions shared by every rule file. No rules here.
#
# Everything a job needs is checked while the workflow is parsed, so a bad config, a bad
# module manifest or a missing contributor file fails before any job runs, with one line per
# problem naming the file and the field:
#
#   workflow/analyses/x.yaml: figures[0].id: 'Fig 1' does not match '^[a-z][a-z0-9]*(_[a-z0-9]+)*$'
#
# Paths are relative to the repository root: run snakemake from there.

import ast
import copy
import hashlib
import json
from pathlib import Path

import jsonschema
import yaml

from spikeloc.pipeline import authorship
from spikeloc.core.config import config_from_dict
from spikeloc.errors import ConfigError, SpikelocError


class PipelineError(SpikelocError):
    """A problem in the config or a manifest, one ``<file>: <field>: <problem>`` per line."""


ANALYSES_DIR = Path("workflow/analyses")
NOTEBOOKS_DIR = Path("workflow/notebooks")
SCHEMAS_DIR = Path("workflow/schemas")
CONTRIBUTORS_DIR = Path("contributors")
SECTIONS_DIR = Path("paper/sections")
# The software environment of every rule (documentation, and `--sdm conda` on clusters that
# want it); relative to workflow/rules/, where the rules are defined.
CONDA_ENV = "../../environment.yml"

# The core code a trained model depends on. Its content hash is a parameter of rule `train`,
# so editing one of these files retrains (Snakemake's params trigger), while editing plotting,
# analysis or paper code only re-runs the notebooks and the paper.
CORE_MODULES = (
    "stimuli",
    "neurons",
    "layers",
    "models",
    "config",
    "training",
    "evaluation",
    "io",
    "performance",
)
CORE_FILES = [f"src/spikeloc/{m}.py" for m in CORE_MODULES]
# Library code the notebooks import on top of the core (mtime inputs of every analysis rule).
NOTEBOOK_LIBRARY_FILES = [
    str(p)
    for p in sorted(Path("src/spikeloc").glob("*.py"))
    if p.stem not in ("cli", "authorship", "paper", "scaffold", "__init__")
]

# Keys of a run config that come from the runs block itself, not from overrides.
_RUN_LEVEL_KEYS = ("name", "preset", "seed", "device", "threads")


# --------------------------------------------------------------------------- validation


def _field(path):
    """``figures[0].id`` from a jsonschema path deque."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _short(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _schema_problem(source, error):
    """One line for one jsonschema error: unknown and missing keys get their own field."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed)
        known = ", ".join(sorted(allowed))
        return [
            f"{source}: {_field(path + [k])}: unknown key (known: {known})" for k in extra
        ]
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        return [f"{source}: {_field(path + [k])}: missing required field" for k in missing]
    if error.validator == "propertyNames":
        return [f"{source}: {_field(path)}: key {_short(error.instance)}: {error.message}"]
    if error.validator in ("oneOf", "anyOf") and error.context:
        best = jsonschema.exceptions.best_match(error.context)
        return [f"{source}: {_field(path)}: {best.message}"]
    message = error.message
    if len(message) > 160:
        message = message[:157] + "..."
    return [f"{source}: {_field(path)}: {message}"]


def _load_schema(name):
    with open(SCHEMAS_DIR / f"{name}.schema.json", encoding="utf-8") as fh:
        return json.load(fh)


def schema_problems(data, schema, source):
    """Every schema violation of ``data``, one line each, in document order."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(
        validator.iter_errors(data),
        key=lambda e: [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in e.absolute_path],
    )
    lines = []
    for error in errors:
        lines += _schema_problem(source, error)
    return lines


def _deref(schema, root):
    while "$ref" in schema:
        ref = schema["$ref"]
        node = root
        for part in ref.lstrip("#/").split("/"):
            node = node[part]
        extra = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**node, **extra}
    return schema


def with_defaults(data, schema, root=None):
    """A copy of ``data`` with every missing key that has a schema ``default`` filled in."""
    root = root or schema
    schema = _deref(schema, root)
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for key, sub in schema.get("properties", {}).items():
        sub = _deref(sub, root)
        if key not in out and "default" in sub:
            out[key] = copy.deepcopy(sub["default"])
        if key in out:
            out[key] = with_defaults(out[key], sub, root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in out:
            if key not in schema.get("properties", {}):
                out[key] = with_defaults(out[key], extra, root)
    return out


def fail(problems):
    """Stop the workflow before any job runs, printing one line per problem."""
    raise PipelineError("\n".join(problems))


def _config_source():
    """The config files in effect, relative to the repository, the workflow's own first."""
    here = Path.cwd().resolve()
    files = []
    for f in workflow.configfiles or ["config/config.yaml"]:
        p = Path(f).resolve()
        files.append(str(p.relative_to(here)) if p.is_relative_to(here) else str(f))
    files = sorted(dict.fromkeys(files), key=lambda f: f != "config/config.yaml")
    return " + ".join(files)


def _deep_merge(base, override):
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _notebook_parameters(path):
    """Names assigned in the notebook's cell tagged ``parameters`` (None if it has none)."""
    with open(path, encoding="utf-8") as fh:
        nb = json.load(fh)
    for cell in nb.get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "".join(cell.get("source", []))
            names = set()
            for node in ast.parse(source).body:
                targets = getattr(node, "targets", None) or [getattr(node, "target", None)]
                for t in targets:
                    if isinstance(t, ast.Name):
                        names.add(t.id)
            return names
    return None


# --------------------------------------------------------------------------- the config

CONFIG_SOURCE = _config_source()
_problems = schema_problems(config, _load_schema("config"), CONFIG_SOURCE)
if _problems:
    fail(_problems)
CFG = with_defaults(config, _load_schema("config"))

RUNS = CFG["runs"]
RUN_CONFIGS = {}  # run name -> validated spikeloc.core.config.RunConfig
RUN_CONFIG_TEXT = {}  # run name -> the YAML rule `run_config` writes
_problems = []
for _run, _spec in RUNS.items():
    _field_prefix = f"runs.{_run}.overrides"
    _clash = [k for k in _RUN_LEVEL_KEYS if k in _spec["overrides"]]
    if _clash:
        _problems.append(
            f"{CONFIG_SOURCE}: {_field_prefix}.{_clash[0]}: set runs.{_run}.{_clash[0]} "
            "instead (name, preset, seed, device and threads are run-level keys)"
        )
        continue
    _data = _deep_merge(
        {"name": _run, "preset": _spec["preset"], "seed": _spec["seed"]}, _spec["overrides"]
    )
    try:
        _cfg = config_from_dict(_data, CONFIG_SOURCE)
    except ConfigError as exc:
        _field_name = exc.field
        if _field_name not in ("name", "preset", "seed", "<top>"):
            _field_name = f"{_field_prefix}.{_field_name}"
        else:
            _field_name = f"runs.{_run}.{_field_name}"
        _problems.append(f"{CONFIG_SOURCE}: {_field_name}: {exc.problem}")
        continue
    RUN_CONFIGS[_run] = _cfg
    _resolved = _cfg.to_dict()
    # where a run computes is not part of what it computes: the device goes to the command
    # line (a resource of rule train), so moving a run between CPU and GPU does not retrain it
    for _key in ("device", "threads"):
        _resolved.pop(_key, None)
    # only what determines the result goes in (not which file it came from), so the same
    # effective run from another config file does not re-train
    RUN_CONFIG_TEXT[_run] = (
        f"# Run {_run!r}: preset {_spec['preset']!r} + runs.{_run}.overrides of the workflow\n"
        "# config, resolved. Written by rule run_config (workflow/rules/train.smk); do not edit.\n"
        + yaml.safe_dump(_resolved, sort_keys=False)
    )
if _problems:
    fail(_problems)


def run_device(run):
    """auto, cpu or cuda: the run's own device, else the top-level one."""
    return RUNS[run].get("device") or CFG["device"]


def _run_resource(run, key):
    own = RUNS[run].get("resources") or {}
    return own[key] if own.get(key) is not None else CFG["train"][key]


def train_threads(wildcards):
    return _run_resource(wildcards.run, "threads")


def train_mem_mb(wildcards):
    return _run_resource(wildcards.run, "mem_mb")


def train_runtime(wildcards):
    return _run_resource(wildcards.run, "runtime")


def train_device(wildcards):
    return run_device(wildcards.run)


def train_gpu(wildcards):
    """1 for cuda runs (sbatch --gpus=1 under the SLURM executor), unset otherwise."""
    return 1 if run_device(wildcards.run) == "cuda" else None


def train_gpu_model(wildcards):
    if run_device(wildcards.run) == "cuda" and CFG.get("gpu_model"):
        return CFG["gpu_model"]
    return None


def core_code_hash():
    """sha256 over the content of the core modules (not their mtimes)."""
    h = hashlib.sha256()
    for f in CORE_FILES:
        h.update(f.encode() + b"\0")
        try:
            h.update(Path(f).read_bytes())
        except FileNotFoundError:
            h.update(b"<missing>")
        h.update(b"\0")
    return h.hexdigest()[:16]


CORE_HASH = core_code_hash()

RUN_FILES = ("model.pt", "metrics.json", "history.csv", "provenance.json", "config.yaml")


def run_outputs(run):
    return [f"results/runs/{run}/{name}" for name in RUN_FILES]


# --------------------------------------------------------------------------- the manifests

_MANIFEST_SCHEMA = _load_schema("manifest")
MODULES = {}  # module name -> manifest with defaults
_problems = []
_figure_owner = {}
for _path in sorted(ANALYSES_DIR.glob("*.yaml")):
    _name = _path.stem
    _where = str(_path)
    if not jsonschema.Draft202012Validator(
        _MANIFEST_SCHEMA["$defs"]["name"]
    ).is_valid(_name):
        _problems.append(f"{_where}: (file name): module name must be lowercase snake case")
        continue
    try:
        with open(_path, encoding="utf-8") as _fh:
            _data = yaml.safe_load(_fh)
    except yaml.YAMLError as exc:
        _mark = getattr(exc, "problem_mark", None)
        _line = f"line {_mark.line + 1}" if _mark else "(yaml)"
        _problems.append(f"{_where}: {_line}: invalid YAML: {getattr(exc, 'problem', exc)}")
        continue
    if not isinstance(_data, dict):
        _problems.append(f"{_where}: (document): must be a mapping")
        continue
    _bad = schema_problems(_data, _MANIFEST_SCHEMA, _where)
    if _bad:
        _problems += _bad
        continue
    _m = with_defaults(_data, _MANIFEST_SCHEMA)
    _nb = NOTEBOOKS_DIR / f"{_name}.ipynb"
    if not _nb.is_file():
        _problems.append(f"{_where}: (notebook): {_nb} does not exist")
        continue
    _params = _notebook_parameters(_nb)
    if _params is None:
        _problems.append(f"{_nb}: (parameters cell): no cell is tagged 'parameters'")
        continue
    for _i, _run in enumerate(_m["runs"]):
        if _run not in RUNS:
            _problems.append(
                f"{_where}: runs[{_i}]: no run {_run!r} in the config runs block "
                f"({CONFIG_SOURCE}; known: {', '.join(sorted(RUNS)) or 'none'})"
            )
    for _i, _file in enumerate(_m["data"]):
        if not Path(_file).is_file():
            _problems.append(f"{_where}: data[{_i}]: {_file} does not exist")
    for _i, _fig in enumerate(_m["figures"]):
        _other = _figure_owner.setdefault(_fig["id"], _name)
        if _other != _name:
            _problems.append(
                f"{_where}: figures[{_i}].id: {_fig['id']!r} is already made by module {_other!r}"
            )
    _declared = {v["name"] for v in _m["variables"]}
    for _i, _claim in enumerate(_m["claims"]):
        _var = _claim["variable"]
        if "." not in _var and _var not in _declared:
            _problems.append(
                f"{_where}: claims[{_i}].variable: {_var!r} is not in this module's variables"
            )
    if _m.get("section") and not (SECTIONS_DIR / f"{_m['section']}.typ").is_file():
        _problems.append(
            f"{_where}: section: {SECTIONS_DIR}/{_m['section']}.typ does not exist"
        )
    _settings = CFG["modules"].get(_name, {"parameters": {}, "resources": {}})
    for _key in _settings.get("parameters", {}):
        if _key not in _params:
            _problems.append(
                f"{CONFIG_SOURCE}: modules.{_name}.parameters.{_key}: not a name of the "
                f"parameters cell of {_nb} (known: {', '.join(sorted(_params))})"
            )
    _m["notebook"] = str(_nb)
    _m["notebook_parameters"] = _params
    _m["source"] = _where
    MODULES[_name] = _m
for _name in CFG["modules"]:
    if _name not in MODULES and not _problems:
        _problems.append(
            f"{CONFIG_SOURCE}: modules.{_name}: no manifest {ANALYSES_DIR}/{_name}.yaml"
        )
if _problems:
    fail(_problems)

# Owners and original authors need a contributor file; contributor files must be valid.
try:
    authorship.check_or_raise(CONTRIBUTORS_DIR, ANALYSES_DIR)
except SpikelocError as exc:
    fail([str(exc)])


# --------------------------------------------------------------------------- module helpers


def module_figures(module, exts=("pdf", "png", "json"), only_paper=False):
    out = []
    for fig in MODULES[module]["figures"]:
        if only_paper and not fig.get("in_paper", True):
            continue
        out += [f"figures/{fig['id']}.{ext}" for ext in exts]
    return out


def all_figures(exts=("pdf", "png", "json")):
    return [f for m in sorted(MODULES) for f in module_figures(m, exts)]


def module_variables(module):
    return f"results/variables/{module}.json"


def module_inputs(module):
    """Inputs of a module's rule: notebook, run directories it reads, data files, library."""
    m = MODULES[module]
    inputs = {"notebook": m["notebook"], "manifest": m["source"], "library": NOTEBOOK_LIBRARY_FILES}
    inputs["runs"] = [f for run in m["runs"] for f in run_outputs(run)]
    inputs["data"] = list(m["data"])
    return inputs


def module_resource(module, key):
    """config modules.<module>.resources > the manifest's resources > config analysis."""
    for source in (
        CFG["modules"].get(module, {}).get("resources") or {},
        MODULES[module].get("resources") or {},
    ):
        if source.get(key) is not None:
            return source[key]
    return CFG["analysis"][key]


def module_parameters(module):
    """The papermill parameters of a module (YAML, for ``papermill -y``)."""
    m = MODULES[module]
    params = {
        "module": module,
        "runs": {run: f"results/runs/{run}" for run in m["runs"]},
        "figures_dir": "figures",
        "variables_path": module_variables(module),
        "notebook_path": m["notebook"],
        "config_hash": config_fingerprint(module),
    }
    params = {k: v for k, v in params.items() if k in m["notebook_parameters"]}
    params.update(CFG["modules"].get(module, {}).get("parameters", {}))
    return yaml.safe_dump(params, sort_keys=True, default_flow_style=True, width=10**6).strip()


def config_fingerprint(module):
    """Short hash of what a module's results depend on: its runs' configs and its settings."""
    m = MODULES[module]
    blob = {
        "runs": {run: RUN_CONFIG_TEXT[run] for run in m["runs"]},
        "core": CORE_HASH if m["runs"] else None,
        "settings": CFG["modules"].get(module, {}).get("parameters", {}),
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:12]


def paper_figures():
    return [f for m in sorted(MODULES) for f in module_figures(m, ("pdf",), only_paper=True)]


PAPER_SOURCES = sorted(
    str(p) for p in Path("paper").rglob("*") if p.suffix in (".typ", ".bib") and "build" not in p.parts
)
AUTHORSHIP_FILES = [
    "results/authorship/authors.json",
    "results/authorship/credit.json",
    "results/authorship/contributions.json",
]
