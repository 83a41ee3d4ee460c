"""Wall time of the published basic model trained at paper scale (a script, not a test).

The basic model of the COMOB paper (preset ``basic``): f = 50 Hz, 200 -> 8 LIF -> 12 leaky
integrators, tau = 2 ms for both layers, firing-rate regulariser on, Adam lr 1e-3, 16,384
training samples in batches of 128 for 100 epochs = 12,800 Adam steps, through the library's
own training loop (``spikeloc.core.training.train``, default fused backend).

Data generation (16,384 + 4,096 samples, exact per-bin probabilities) is timed separately.
With ``--epochs N`` (N < 100) only N epochs are trained and the full run is extrapolated from
the median epoch time -- the JSON says which (``measured_epochs``, ``extrapolated``).

Usage::

    python benchmarks/bench_paper_scale.py                 # the full 100 epochs
    python benchmarks/bench_paper_scale.py --epochs 10     # 10 epochs, extrapolated to 100
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=100, help="epochs to train (paper: 100)")
    p.add_argument("--backend", default="auto", choices=["auto", "fused", "reference"])
    p.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch threads (default 2, as in the training-step benchmark; on a 2-vCPU machine "
        "shared with other busy processes use 1, see README.md)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(REPO / "benchmarks/results/paper_scale.json"))
    args = p.parse_args(argv)
    t_start = time.perf_counter()
    sys.path.insert(0, str(REPO / "src"))
    import torch

    from spikeloc.core import evaluation
    from spikeloc.core.config import config_from_dict
    from spikeloc.core.training import make_datasets, resolve_device, train
    from spikeloc.engine.runtime import configure_runtime

    configure_runtime(args.threads)
    full_epochs = 100
    cfg = config_from_dict(
        {
            "preset": "basic",
            "seed": args.seed,
            "backend": args.backend,
            "device": "cpu",
            "threads": args.threads,
            "training": {"epochs": args.epochs},
        }
    )
    tr = cfg.training
    steps_per_epoch = -(-tr.n_train // tr.batch_size)
    t0 = time.perf_counter()
    data = make_datasets(cfg, resolve_device(cfg.device))
    data_s = time.perf_counter() - t0
    result = train(cfg, progress=False, datasets=data)
    epoch_s = [h["seconds"] for h in result.history]
    if args.epochs >= full_epochs:
        full_s, extrapolated = result.wall_s * full_epochs / args.epochs, False
    else:
        full_s, extrapolated = statistics.median(epoch_s) * full_epochs, True
    pred = evaluation.predict(result.model, data["test"])
    out = {
        "benchmark": "basic model at paper scale (12,800 Adam steps)",
        "machine": {
            "cpu": _cpu_name(),
            "logical_cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
        },
        "threads": torch.get_num_threads(),
        "backend": args.backend,
        "load_average_end": os.getloadavg(),
        "steps_per_epoch": steps_per_epoch,
        "measured_epochs": args.epochs,
        "measured_steps": steps_per_epoch * args.epochs,
        "train_wall_s": result.wall_s,
        "epoch_s": epoch_s,
        "median_step_ms": statistics.median(epoch_s) / steps_per_epoch * 1e3,
        "full_run_train_s": full_s,
        "extrapolated": extrapolated,
        "data_generation_s": data_s,
        "full_run_with_data_s": full_s + data_s,
        "process_wall_s": time.perf_counter() - t_start,
        "final_train_loss": result.history[-1]["train_loss"],
        "final_train_accuracy": result.history[-1]["train_accuracy"],
        "test_accuracy": evaluation.accuracy(pred),
        "test_mae_midpoint_deg": evaluation.mae_midpoint_deg(pred),
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    how = f"extrapolated from {args.epochs} epochs" if extrapolated else "measured"
    print(
        f"basic model, {steps_per_epoch * full_epochs} steps: training {full_s:.1f} s ({how}), "
        f"{out['median_step_ms']:.2f} ms/step; data generation {data_s:.1f} s; "
        f"test accuracy {out['test_accuracy']:.3f}, MAE {out['test_mae_midpoint_deg']:.2f} deg"
    )
    print(f"written {path}")
    return 0


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    raise SystemExit(main())
