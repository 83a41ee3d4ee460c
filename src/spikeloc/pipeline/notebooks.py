"""Running a module's notebook: papermill, over a local (IPC) kernel connection.

The workflow's ``analyse_<module>`` rules run::

    python -m spikeloc.pipeline.notebooks IN.ipynb OUT.ipynb --parameters-yaml "{...}"

which is ``papermill IN OUT --kernel python3 --log-output --no-progress-bar -y ...`` with one
difference: the kernel talks to papermill over IPC sockets in Jupyter's runtime directory
instead of TCP on localhost. Over TCP every kernel warns that it "is running over TCP without
encryption", a warning that would be printed into every job log and executed notebook; IPC
is local to the machine, which is all a batch run needs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import yaml
from jupyter_client.manager import AsyncKernelManager
from traitlets import CaselessStrEnum

__all__ = ["LocalKernelManager", "run_notebook", "main"]


class LocalKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels listen on IPC sockets (same machine only)."""

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)


def run_notebook(
    notebook: str, output: str, parameters: dict[str, Any] | None = None, *, kernel: str = "python3"
) -> None:
    """Execute ``notebook`` with ``parameters`` into ``output`` (cell outputs to the log)."""
    import papermill

    papermill.execute_notebook(
        notebook,
        output,
        parameters=parameters or {},
        kernel_name=kernel,
        log_output=True,
        progress_bar=False,
        kernel_manager_class=LocalKernelManager,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spikeloc.pipeline.notebooks",
        description="Run a notebook with papermill over a local (IPC) kernel.",
    )
    parser.add_argument("notebook")
    parser.add_argument("output")
    parser.add_argument(
        "--parameters-yaml", "-y", default="{}", help="the parameters as one YAML mapping"
    )
    parser.add_argument("--kernel", default="python3", help="kernel name (default python3)")
    args = parser.parse_args(argv)
    parameters = yaml.safe_load(args.parameters_yaml) or {}
    if not isinstance(parameters, dict):
        parser.error("--parameters-yaml: must be a YAML mapping")
    run_notebook(args.notebook, args.output, parameters, kernel=args.kernel)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
