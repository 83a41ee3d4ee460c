"""A sweep trained as one ensemble against one run after another (a script, not a test).

Cases (issue 13), each a 10-member sweep through the library's own training
(:func:`spikeloc.core.ensemble.train_ensemble` vs :func:`spikeloc.core.training.train`), whole
wall time including the data each run generates:

* ``tutorial-shared``: the tutorial model (200 -> 30 -> 12, f = 20 Hz, 4096 samples in batches
  of 64, 10 epochs); the members share seed 0, hence their data and shuffling (as a
  time-constant or Dale sweep does) and differ in the hidden time constant;
* ``tutorial-own``: the same model, seeds 0..9: every member its own data;
* ``250hz``: the 250 Hz model of the notebook map (f = 250 Hz, dt = 0.1 ms, T = 1000, 5
  hidden, separate time constants 0.5 ms), seeds 0..9.

Both ways run in the same process, interleaved (ensemble, one by one, ensemble, ...), and the
medians are reported, with the ratio. A projection table then multiplies the measured cost
per run-epoch (ensemble and alone) by the runs and epochs of every paper study (catalogue
section 5).

    python benchmarks/bench_ensemble.py                       # the issue's sizes, 2 repeats
    python benchmarks/bench_ensemble.py --epochs 2 --reps 1   # a quick look
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# paper studies that train SNNs with this core: (name, runs, epochs, samples per epoch incl.
# validation, time steps) from the catalogue's section 5 and the module issues
STUDIES = [
    ("basic model (figs 3-8)", 1, 100, 16384, 100),
    ("tutorial surrogate (3 runs)", 3, 10, 4096, 100),
    ("membrane time constant (10 tau x 6 seeds)", 60, 10, 4096, 100),
    ("Dale's law (11 fractions x 5 seeds + 3 x 5)", 70, 30, 8192, 100),
    ("output readouts (60 runs)", 60, 10, 4096, 100),
    ("dynamic threshold (80 runs)", 80, 10, 4096, 100),
    ("noise and dropout (54 runs)", 54, 20, 8192, 100),
    ("TCA (1 + 50 networks)", 51, 10, 4096, 100),
    ("filter-and-fire (2 runs)", 2, 100, 4096, 100),
    ("250 Hz (19 runs)", 19, 50, 4096, 1000),
]


def configs(case: str, epochs: int, n_train: int):
    from spikeloc.core.config import config_from_dict

    training = {"epochs": epochs, "n_train": n_train, "n_test": 512}
    if case == "250hz":
        return [
            config_from_dict(
                {
                    "preset": "tutorial",
                    "seed": s,
                    "device": "cpu",
                    "stimulus": {"frequency_hz": 250.0, "dt_s": 0.0001},
                    "model": {"n_hidden": 5, "tau_hidden_s": 0.0005, "tau_output_s": 0.0005},
                    "training": training,
                }
            )
            for s in range(10)
        ]
    if case == "tutorial-shared":
        return [
            config_from_dict(
                {
                    "preset": "tutorial",
                    "seed": 0,
                    "device": "cpu",
                    "model": {"tau_hidden_s": 0.002 + 0.003 * i},
                    "training": training,
                }
            )
            for i in range(10)
        ]
    return [
        config_from_dict({"preset": "tutorial", "seed": s, "device": "cpu", "training": training})
        for s in range(10)
    ]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--n-train", type=int, default=4096)
    p.add_argument("--reps", type=int, default=2, help="interleaved repeats of each way")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cases", default="tutorial-shared,tutorial-own,250hz")
    p.add_argument("--out", default=str(REPO / "benchmarks/results/ensemble.json"))
    args = p.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))
    import torch

    from spikeloc.core.ensemble import train_ensemble
    from spikeloc.core.training import train
    from spikeloc.engine.runtime import configure_runtime

    configure_runtime(args.threads)
    results = {}
    for case in args.cases.split(","):
        cfgs = configs(case, args.epochs, args.n_train)
        # warm: compile the kernels of this shape once, outside the timings
        warm = configs(case, 1, 256)
        train_ensemble(warm[:2], progress=False)
        train(warm[0], progress=False)
        ens, alone = [], []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            train_ensemble(cfgs, progress=False)
            ens.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for c in cfgs:
                train(c, progress=False)
            alone.append(time.perf_counter() - t0)
        e, a = statistics.median(ens), statistics.median(alone)
        results[case] = {"ensemble_s": e, "one_by_one_s": a, "ratio": a / e, "runs": ens + alone}
        print(
            f"{case:16s} ensemble {e:7.1f} s   one by one {a:7.1f} s   ratio {a / e:5.2f}x",
            flush=True,
        )
    # projection: cost per run-epoch at 4096 samples, scaled by samples and time steps
    per = {}
    if "tutorial-own" in results:
        r = results["tutorial-own"]
        scale = 10 * args.epochs * (args.n_train / 4096)
        per[100] = (r["ensemble_s"] / scale, r["one_by_one_s"] / scale)
    if "250hz" in results:
        r = results["250hz"]
        scale = 10 * args.epochs * (args.n_train / 4096)
        per[1000] = (r["ensemble_s"] / scale, r["one_by_one_s"] / scale)
    rows = []
    if per:
        print("\nprojected paper-scale training time on this machine (minutes)")
        print(f"{'study':46s} {'runs':>5s} {'epochs':>6s} {'ensemble':>9s} {'alone':>8s}")
        total_e = total_a = 0.0
        for name, runs, epochs, samples, steps in STUDIES:
            if steps not in per:
                continue
            ce, ca = per[steps]
            work = runs * epochs * samples / 4096
            me, ma = work * ce / 60, work * ca / 60
            total_e, total_a = total_e + me, total_a + ma
            rows.append(
                {"study": name, "runs": runs, "epochs": epochs, "ensemble_min": me, "alone_min": ma}
            )
            print(f"{name:46s} {runs:5d} {epochs:6d} {me:9.1f} {ma:8.1f}")
        print(f"{'total':46s} {'':5s} {'':6s} {total_e:9.1f} {total_a:8.1f}")
    out = {
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": args.threads,
        "epochs": args.epochs,
        "n_train": args.n_train,
        "cases": results,
        "projection": rows,
        "note": "projection: measured cost per run-epoch (own-data members) times runs x "
        "epochs x samples/4096; the basic model's batch of 128 and the studies' validation "
        "passes are approximated by samples",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
