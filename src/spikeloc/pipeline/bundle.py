"""Results bundles: train on the cluster, make the figures and the paper anywhere.

::

    spikeloc bundle export --out results-quick.tar.gz --configfile config/quick.yaml
    spikeloc bundle import results-quick.tar.gz --configfile config/quick.yaml

``export`` packs what the figures need from ``results/<scale>/``: every chunk's spec and
result file, the run directories they name, the sweep tables and the recorded variables, with
a manifest (``bundle.json``) of each file's sha256, the commit, the scale, the code hash and
the digest of every chunk spec (the resolved run configs + the code hash that trains them).

``import`` checks every file against its checksum before anything is written (a corrupt
bundle is refused naming the failing file), compares the bundle's chunk specs with the ones
this checkout would write (a bundle made with other configs or training code is refused, or
with ``--allow-stale`` imported and marked in ``results/<scale>/bundle-stale.json``), refuses
to replace a different file already there (``--overwrite`` allows it), then moves the files
into place and orders their times (specs, then runs and chunk results, then tables and
variables) so that ``snakemake figures paper`` sees the training as done.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from spikeloc.errors import SpikelocError
from spikeloc.io import atomic_write_json

__all__ = ["BUNDLE_FORMAT", "export_bundle", "import_bundle", "configure_parser"]

BUNDLE_FORMAT = "spikeloc-bundle/1"
MANIFEST = "bundle.json"
_SKIP_SUFFIXES = (".partial", ".old", ".stale")
# mtime order after import: a rule's outputs newer than its inputs
_ORDER = {"spec": 0, "run": 1, "result": 1, "table": 2, "variables": 3}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _commit(root: Path) -> tuple[str | None, bool]:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=root,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        return None, False
    return head, dirty


def _read_configs(files: Sequence[str], root: Path) -> dict:
    from spikeloc.core.config import deep_merge

    merged: dict = {}
    for f in ["config/config.yaml", *[f for f in files if f != "config/config.yaml"]]:
        path = root / f
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise SpikelocError(f"{f}: --configfile: cannot read: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise SpikelocError(f"{f}: --configfile: invalid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise SpikelocError(f"{f}: --configfile: must be a YAML mapping")
        merged = deep_merge(merged, data)
    return merged


def expected_specs(configfiles: Sequence[str] = (), root: str | Path = ".") -> tuple[Any, dict]:
    """``(project, {spec path: spec text this checkout writes})`` for the configured scale."""
    from spikeloc.pipeline import manifests
    from spikeloc.pipeline.chunks import spec_text
    from spikeloc.pipeline.validation import ProblemsError

    root = Path(root)
    config = _read_configs(configfiles, root)
    source = manifests.config_source(list(configfiles), root)
    cwd = os.getcwd()
    os.chdir(root)  # the project resolves manifests and the code hash from the repo root
    try:
        project = manifests.load_project(config, source)
    except ProblemsError as exc:
        raise SpikelocError(exc.problems[0] if exc.problems else str(exc)) from None
    finally:
        os.chdir(cwd)
    specs = {project.chunk_spec_path(c): spec_text(c, project.code_hash) for c in project.chunks()}
    return project, specs


def _collect(project: Any, specs: dict, root: Path) -> dict[str, str]:
    """``{relative path: kind}`` of every file to pack; refuses results not made by this
    checkout or not finished."""
    files: dict[str, str] = {}
    for spec_path, text in specs.items():
        spec_file = root / spec_path
        result = spec_path[: -len(".spec.json")] + ".json"
        if not (root / result).is_file() or not spec_file.is_file():
            raise SpikelocError(
                f"{result}: (file): not trained yet; run snakemake (training) before exporting"
            )
        if spec_file.read_text(encoding="utf-8") != text:
            raise SpikelocError(
                f"{spec_path}: (file): made with other configs or code than this checkout; "
                "rerun snakemake before exporting"
            )
        files[spec_path] = "spec"
        files[result] = "result"
        for run in json.loads(text)["runs"]:
            run_dir = root / run["path"]
            for f in sorted(run_dir.rglob("*")):
                if f.is_file() and not f.name.endswith(".tmp"):
                    files[f.relative_to(root).as_posix()] = "run"
    results = root / project.results
    for sub, kind in (("sweeps", "table"), ("variables", "variables")):
        for f in sorted((results / sub).rglob("*")):
            if f.is_file() and not f.name.startswith("."):
                files[f.relative_to(root).as_posix()] = kind
    return files


def export_bundle(
    out: str | Path, *, configfiles: Sequence[str] = (), root: str | Path = "."
) -> dict:
    """Write the bundle of the configured scale to ``out`` (atomically); returns its manifest."""
    root = Path(root)
    out = Path(out)
    if out.exists() and not out.is_file():
        raise SpikelocError(f"{out}: --out: exists and is not a file")
    project, specs = expected_specs(configfiles, root)
    files = _collect(project, specs, root)
    commit, dirty = _commit(root)
    manifest = {
        "format": BUNDLE_FORMAT,
        "commit": commit,
        "dirty": dirty,
        "scale": project.scale,
        "config": project.config_source,
        "code_hash": project.code_hash,
        "created_unix": time.time(),
        "specs": {p: hashlib.sha256(t.encode()).hexdigest() for p, t in specs.items()},
        "files": {p: {"sha256": _sha256(root / p), "kind": k} for p, k in sorted(files.items())},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # an ordinary file, not mkstemp's private one
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            blob = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime = len(blob), int(time.time())
            tar.addfile(info, io.BytesIO(blob))
            for rel in manifest["files"]:
                tar.add(root / rel, arcname=rel, recursive=False)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return manifest


def _safe_name(name: str, bundle: Path) -> str:
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or not p.parts or p.parts[0] != "results":
        raise SpikelocError(f"{bundle}: {name}: unsafe path in the bundle (outside results/)")
    return p.as_posix()


def import_bundle(
    bundle: str | Path,
    *,
    configfiles: Sequence[str] = (),
    root: str | Path = ".",
    allow_stale: bool = False,
    overwrite: bool = False,
    say=print,
) -> dict:
    """Check and unpack a bundle into ``root``; returns its manifest (see the module doc)."""
    bundle, root = Path(bundle), Path(root)
    if not bundle.is_file():
        raise SpikelocError(f"{bundle}: (file): no such bundle")
    try:
        tar = tarfile.open(bundle, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise SpikelocError(f"{bundle}: (file): not a readable bundle ({exc})") from None
    staging = Path(tempfile.mkdtemp(prefix=".bundle-import.", dir=root))
    try:
        with tar:
            try:
                members = tar.getmembers()
            except (tarfile.TarError, OSError, EOFError, zlib_error()) as exc:
                raise SpikelocError(f"{bundle}: (file): truncated or corrupt ({exc})") from None
            try:
                member = tar.getmember(MANIFEST)
                manifest = json.loads(tar.extractfile(member).read().decode())
            except (KeyError, ValueError, tarfile.TarError, OSError, EOFError, AttributeError):
                raise SpikelocError(f"{bundle}: {MANIFEST}: missing or not readable") from None
            if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
                raise SpikelocError(f"{bundle}: {MANIFEST}: format: not a {BUNDLE_FORMAT} bundle")
            listed = manifest.get("files")
            if not isinstance(listed, dict) or not listed:
                raise SpikelocError(f"{bundle}: {MANIFEST}: files: missing or empty")
            seen = set()
            for m in members:
                if m.name == MANIFEST:
                    continue
                name = _safe_name(m.name, bundle)
                if not m.isfile():
                    raise SpikelocError(f"{bundle}: {name}: not a plain file")
                if name not in listed:
                    raise SpikelocError(f"{bundle}: {name}: not listed in {MANIFEST}")
                dest = staging / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with tar.extractfile(m) as src, open(dest, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                except (tarfile.TarError, OSError, EOFError, zlib_error()) as exc:
                    raise SpikelocError(f"{bundle}: {name}: cannot be read ({exc})") from None
                if _sha256(dest) != listed[name].get("sha256"):
                    raise SpikelocError(f"{bundle}: {name}: fails its sha256 checksum")
                seen.add(name)
        missing = sorted(set(listed) - seen)
        if missing:
            raise SpikelocError(f"{bundle}: {missing[0]}: listed in {MANIFEST} but missing")

        # is it what this checkout would train?
        project, specs = expected_specs(configfiles, root)
        stale = []
        if manifest.get("scale") != project.scale:
            raise SpikelocError(
                f"{bundle}: scale: the bundle is {manifest.get('scale')!r}, this configuration "
                f"is {project.scale!r} (pass the matching --configfile)"
            )
        theirs = manifest.get("specs") or {}
        for path, text in specs.items():
            if theirs.get(path) != hashlib.sha256(text.encode()).hexdigest():
                stale.append(path)
        commit, _ = _commit(root)
        if stale:
            why = (
                f"{len(stale)} of {len(specs)} chunk specs differ from this checkout's "
                f"(configs or training code; bundle commit {manifest.get('commit')}, code hash "
                f"{manifest.get('code_hash')}; here {commit}, {project.code_hash})"
            )
            if not allow_stale:
                raise SpikelocError(
                    f"{bundle}: {stale[0]}: stale: {why}; refusing (--allow-stale imports it "
                    "marked stale; snakemake will then retrain what differs)"
                )
            say(f"bundle: WARNING: stale: {why}")
        elif manifest.get("commit") != commit:
            say(
                f"bundle: made at commit {manifest.get('commit')}, this is {commit}; its chunk "
                "specs (configs and training code) are identical, so its results are current"
            )

        # nothing the user has is replaced unasked
        for name in sorted(seen):
            dest = root / name
            if dest.exists() and _sha256(dest) != listed[name]["sha256"] and not overwrite:
                raise SpikelocError(
                    f"{name}: (file): exists and differs from the bundle's; refusing to replace "
                    "it (--overwrite replaces it)"
                )
        now = time.time() - 10
        for name in sorted(seen, key=lambda n: _ORDER.get(listed[n].get("kind"), 3)):
            dest = root / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, dest)
            t = now + _ORDER.get(listed[name].get("kind"), 3)
            os.utime(dest, (t, t))
        marker = root / project.results / "bundle-stale.json"
        if stale:
            atomic_write_json(
                marker, {"bundle": str(bundle), "commit": manifest.get("commit"), "stale": stale}
            )
        else:
            marker.unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    say(f"bundle: imported {len(seen)} files from {bundle} ({'STALE' if stale else 'current'})")
    return manifest


def zlib_error():
    import zlib

    return zlib.error


# ------------------------------------------------------------------------------ CLI


def configure_parser(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="bundle_command", required=True)
    ex = sub.add_parser("export", help="pack the finished results the figures need")
    ex.add_argument("--out", required=True, help="bundle file to write (.tar.gz)")
    im = sub.add_parser("import", help="check and unpack a bundle into results/")
    im.add_argument("bundle", help="bundle file (.tar.gz) written by `spikeloc bundle export`")
    im.add_argument("--allow-stale", action="store_true", help="import a stale bundle, marked")
    im.add_argument("--overwrite", action="store_true", help="replace differing files")
    for q in (ex, im):
        q.add_argument(
            "--configfile",
            action="append",
            default=[],
            help="config files laid over config/config.yaml, as given to snakemake",
        )
        q.add_argument("--root", default=".", help="repository root (default: .)")
    ex.set_defaults(func=_cmd_export)
    im.set_defaults(func=_cmd_import)


def _cmd_export(args: argparse.Namespace) -> int:
    m = export_bundle(args.out, configfiles=args.configfile, root=args.root)
    print(
        f"bundle: wrote {args.out}: {len(m['files'])} files, scale {m['scale']}, "
        f"commit {m['commit']}{' (dirty)' if m['dirty'] else ''}, code hash {m['code_hash']}"
    )
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    import_bundle(
        args.bundle,
        configfiles=args.configfile,
        root=args.root,
        allow_stale=args.allow_stale,
        overwrite=args.overwrite,
    )
    return 0
