"""GPU training-step benchmark (a script, not a test): spikeloc's CUDA engine against the
reference loop and the tutorial's per-step loop, on one CUDA device.

Same model, cases and inputs as ``bench_training_step.py`` (200 -> H LIF -> 12 leaky
integrators, batch 128; T=100, H=30, dt=1 ms and T=1000, H=100, dt=0.1 ms), built by the same
functions, all in one process on one GPU (the CPU benchmark's separate worker processes are
about CPU threads and memory, which do not apply here). Each step is timed with
``torch.cuda.synchronize()`` before and after; repetitions are interleaved in rotating order
after warm-up steps and the table reports medians, the ratio of each implementation to
spikeloc's default CUDA engine, its first-step time (Triton compilation included) and the peak
GPU memory of its steps.

Implementations: ``spikeloc`` (the fused engine: the Triton kernels generated from the LIF
specification, one launch over time; without triton the model falls back to the reference),
``spikeloc-reference`` (the autograd oracle), ``tutorial`` (the notebook's loop) and
``snntorch`` when importable.

Usage::

    python benchmarks/bench_gpu.py --out results/gpu_step.json [--reps 20] [--cases 100,1000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import bench_training_step as bts  # noqa: E402

IMPLS = ["spikeloc", "spikeloc-reference", "tutorial", "snntorch"]


def _build(impl: str, x, y, W1, W2, dt_s):
    import torch

    if impl in ("spikeloc", "spikeloc-reference"):
        backend = "reference" if impl == "spikeloc-reference" else "fused"
        return bts._spikeloc_step(x, y, W1, W2, dt_s, backend)
    if impl == "tutorial":
        return bts._tutorial_step(x, y, W1, W2, dt_s, 1, runtime=False)
    if impl == "snntorch":  # the CPU benchmark's network, built on x's device
        return bts._snntorch_step(x, y, W1, W2, dt_s, torch.get_num_threads())
    raise ValueError(impl)


def run_case(name: str, impls: list[str], reps: int, warmup: int, device: str) -> list[dict]:
    import torch

    case = bts.CASES[name]
    dev = torch.device(device)
    cuda = dev.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.pt")
        bts.make_case_data(case, path)
        data = torch.load(path, weights_only=True)
    x = data["x"].to(dev, torch.float32)
    y, W1, W2 = data["y"].to(dev), data["W1"].to(dev), data["W2"].to(dev)
    steps, rows = {}, {}
    for impl in impls:
        sync()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        try:
            step = _build(impl, x, y, W1, W2, case["dt_s"])
            loss = step()
        except ImportError as exc:
            print(f"  [T={case['T']}] skip {impl}: {exc}", file=sys.stderr)
            rows[impl] = {"impl": impl, "skipped": str(exc)}
            continue
        sync()
        first = time.perf_counter() - t0
        for _ in range(warmup):
            step()
        sync()
        steps[impl] = step
        rows[impl] = {"impl": impl, "first_step_s": first, "loss": loss, "ms": [],
                      "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else 0.0}  # fmt: skip
        print(f"  [T={case['T']}] {impl}: first step {first:.2f} s", file=sys.stderr)
    order = list(steps)
    budget_s = 60.0
    for r in range(reps):
        k = r % max(1, len(order))
        for impl in order[k:] + order[:k]:
            if sum(rows[impl]["ms"]) / 1e3 > budget_s:
                continue
            sync()
            t = time.perf_counter()
            steps[impl]()
            sync()
            rows[impl]["ms"].append((time.perf_counter() - t) * 1e3)
    out = []
    base = bts._median(rows["spikeloc"]["ms"]) if "spikeloc" in steps else None
    for impl in impls:
        row = rows[impl]
        rec = {"T": case["T"], "H": case["H"], "impl": impl}
        if "skipped" in row:
            out.append({**rec, "skipped": row["skipped"]})
            continue
        med = bts._median(row["ms"])
        rec.update(median_ms=med, ratio_vs_spikeloc=med / base if base else None,
                   first_step_s=row["first_step_s"], peak_gpu_mb=row["peak_gpu_mb"],
                   reps=len(row["ms"]), loss_first_step=row["loss"])  # fmt: skip
        out.append(rec)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default="100,1000")
    p.add_argument("--impls", default=",".join(IMPLS))
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--out", default=str(HERE / "results/gpu_step.json"))
    p.add_argument("--device", default="cuda", help="cuda (cpu only to check this script)")
    args = p.parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench_gpu: no CUDA device", file=sys.stderr)
        return 2
    impls = [i for i in args.impls.split(",") if i]
    rows = []
    for name in args.cases.split(","):
        print(f"case T={bts.CASES[name]['T']}", file=sys.stderr)
        rows += run_case(name, impls, args.reps, args.warmup, args.device)
    result = {
        "benchmark": "training step on one GPU (forward + backward + Adam), batch 128",
        "device": torch.cuda.get_device_name(0) if args.device == "cuda" else args.device,
        "torch": torch.__version__,
        "cases": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'T':>5} {'H':>4} {'implementation':<20} {'median ms':>10} {'x spikeloc':>10} "
          f"{'1st step s':>10} {'peak MB':>8}")  # fmt: skip
    for r in rows:
        if "skipped" in r:
            print(f"{r['T']:>5} {r['H']:>4} {r['impl']:<20} skipped: {r['skipped']}")
            continue
        print(f"{r['T']:>5} {r['H']:>4} {r['impl']:<20} {r['median_ms']:>10.2f} "
              f"{r['ratio_vs_spikeloc']:>10.1f} {r['first_step_s']:>10.2f} "
              f"{r['peak_gpu_mb']:>8.0f}")  # fmt: skip
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
