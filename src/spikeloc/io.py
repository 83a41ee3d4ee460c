"""File I/O: atomic writes, model files and weight loading with clear errors."""

from __future__ import annotations

import glob
import io
import json
import os
import socket
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikeloc.errors import WeightsError

__all__ = [
    "final_mode",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_torch_save",
    "remove_temp_files",
    "save_model",
    "load_model_file",
    "load_weights",
    "MODEL_FORMAT",
]

MODEL_FORMAT = "spikeloc-model/1"

# names accepted for the two weight matrices in an .npz file
_W1_NAMES = ("W1", "W_ih", "w1")
_W2_NAMES = ("W2", "W_ho", "w2")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def final_mode(path: str | Path) -> int:
    """The permission bits a file written at ``path`` should end with.

    An existing file keeps its mode (a tracked ``CITATION.cff`` stays 0644); a new one gets
    what ``open()`` would give it: ``0o666`` less the process umask. ``tempfile.mkstemp``
    alone would leave every output 0600, unreadable to collaborators on a shared filesystem.
    """
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_current_umask()


_HOST = socket.gethostname().replace(".", "_")
#: a temp file of another machine (shared filesystem) counts as abandoned after this long
_FOREIGN_TEMP_AGE_S = 6 * 3600


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _abandoned(tmp: Path) -> bool:
    """Whether a temp file ``.NAME.HOST-PID.XXXX.tmp`` was left by a writer that is gone."""
    parts = tmp.name.rsplit(".", 3)  # ['.NAME', 'HOST-PID', 'XXXX', 'tmp']
    host, _, pid = parts[1].rpartition("-") if len(parts) == 4 else ("", "", "")
    if host == _HOST and pid.isdigit():
        return int(pid) != os.getpid() and not _alive(int(pid))
    try:  # another machine's, or written before temp names carried the writer
        return time.time() - tmp.stat().st_mtime > _FOREIGN_TEMP_AGE_S or not host
    except FileNotFoundError:
        return False


def remove_temp_files(folder: str | Path, name: str | None = None) -> list[Path]:
    """Remove leftovers of interrupted atomic writes in ``folder`` (those of target ``name``
    only, when given) whose writer is gone; returns what was removed."""
    folder = Path(folder)
    removed = []
    pattern = f".{glob.escape(name)}.*.tmp" if name else ".*.tmp"
    if not folder.is_dir():
        return removed
    for tmp in folder.glob(pattern):
        if tmp.is_file() and _abandoned(tmp):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _atomic(path: str | Path, write: Callable[[Any], None], mode: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    perms = final_mode(path)
    remove_temp_files(path.parent, path.name)  # a killed earlier write of this file
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.{_HOST}-{os.getpid()}.", suffix=".tmp", dir=path.parent
    )
    try:
        os.fchmod(fd, perms)
        with os.fdopen(fd, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temp file beside ``path`` then rename: never a half-written file."""
    return _atomic(path, lambda fh: fh.write(data), "wb")


def atomic_write_text(path: str | Path, text: str) -> Path:
    return _atomic(path, lambda fh: fh.write(text), "w")


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_torch_save(path: str | Path, obj: Any) -> Path:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def save_model(path: str | Path, model: torch.nn.Module, config: dict) -> Path:
    """``model.pt``: a plain dict (state dict + config), loadable with ``weights_only=True``."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return atomic_torch_save(path, {"format": MODEL_FORMAT, "state_dict": state, "config": config})


def load_model_file(path: str | Path) -> dict:
    """Read a ``model.pt`` written by :func:`save_model` (``weights_only=True``)."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(path, "<file>", "no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(path, "<file>", f"not a readable PyTorch file ({first[:120]})") from None
    except Exception as exc:  # unpickling errors come in many types
        raise WeightsError(
            path, "<file>", f"cannot be loaded safely: {type(exc).__name__}"
        ) from None
    if not isinstance(obj, dict) or obj.get("format") != MODEL_FORMAT:
        raise WeightsError(path, "format", f"expected a {MODEL_FORMAT!r} dict written by spikeloc")
    state = obj.get("state_dict")
    if not isinstance(state, dict):
        raise WeightsError(path, "state_dict", "missing")
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise WeightsError(
                path, f"state_dict.{key}", f"must be a tensor, got {type(value).__name__}"
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise WeightsError(path, f"state_dict.{key}", "contains NaN or inf")
    return obj


def load_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    """Weights from a run's ``model.pt`` or an ``.npz`` of named arrays.

    Returns ``(state, config)``: ``state`` has ``W1``/``W2`` (and Dale sign buffers when
    present); ``config`` is the run config stored in ``model.pt`` (``None`` for ``.npz``).
    """
    path = Path(path)
    if not path.exists():
        raise WeightsError(path, "<file>", "no such file")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
            raise WeightsError(path, "<file>", f"not a readable .npz file ({exc})") from None
        state = {}
        for target, names in (("W1", _W1_NAMES), ("W2", _W2_NAMES)):
            found = [n for n in names if n in arrays]
            if not found:
                raise WeightsError(
                    path, target, f"missing: expected one of {list(names)}, found {sorted(arrays)}"
                )
            arr = arrays[found[0]]
            if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.floating):
                raise WeightsError(
                    path, found[0], f"must be a 2-D float array, got {arr.dtype} {arr.shape}"
                )
            if not np.all(np.isfinite(arr)):
                raise WeightsError(path, found[0], "contains NaN or inf")
            state[target] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        return state, None
    obj = load_model_file(path)
    return obj["state_dict"], obj.get("config")


def check_state_matches(
    path: str | Path, state: dict[str, torch.Tensor], model: torch.nn.Module
) -> None:
    """Raise :class:`WeightsError` naming the array whose shape does not fit ``model``."""
    own = model.state_dict()
    for name in [k for k in ("W1", "W2") if k in own]:
        if name not in state:
            raise WeightsError(path, name, "missing")
        if tuple(state[name].shape) != tuple(own[name].shape):
            raise WeightsError(
                path,
                name,
                f"shape {tuple(state[name].shape)} does not match the model's {tuple(own[name].shape)}",
            )
