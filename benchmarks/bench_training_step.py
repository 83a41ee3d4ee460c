"""Training-step benchmark: spikeloc's fused core against the reference loop, the tutorial's
per-step loop, snnTorch and Norse (a script, not a test).

One training step = forward + backward + Adam for ``200 -> H LIF -> 12 leaky integrators``
(readout: time-mean of the output membrane, log-softmax + NLL), batch 128, input from the real
stimulus generator (``spikeloc.core.stimuli.make_dataset``, tutorial settings, f = 20 Hz). Two cases:
T=100, H=30, dt=1 ms and T=1000, H=100, dt=0.1 ms.

How it is measured (see benchmarks/README.md):

* every implementation runs in its **own worker process** (own memory, own runtime settings);
  the driver generates the inputs and initial weights once per case and hands the same file to
  every worker;
* repetitions are **interleaved**: in each round every worker runs a burst of steps (one
  unrecorded re-warming step, then ``--burst`` recorded ones, back to back as in training), in
  a rotating order, after a pause that lets the previous worker's OpenMP threads stop
  spinning; the reported time is the median step (after warm-up steps);
* ``peak_mem_mb`` is the worker's peak resident memory (``VmHWM``: whole process -- imports,
  inputs, steps; ``ru_maxrss`` would include the driver's peak, inherited across fork/exec);
  ``first_step_s`` is the wall time from spawning the worker to the end of its first step;
* torch threads = 2 in every worker. The spikeloc workers use the library's defaults (which
  apply ``spikeloc.engine.runtime.configure_runtime``: denormal flushing, malloc thresholds);
  snnTorch and Norse get the same runtime settings (so the comparison isolates the code);
  the tutorial loop runs twice: out of the box (no flushing, default malloc) and with them.

Usage::

    python benchmarks/bench_training_step.py            # full run, writes the JSON
    python benchmarks/bench_training_step.py --quick    # few repetitions (CI smoke)
    python benchmarks/bench_training_step.py --reps 20 --cases 100 --impls spikeloc,snntorch
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "100": {"T": 100, "H": 30, "dt_s": 1e-3},
    "1000": {"T": 1000, "H": 100, "dt_s": 1e-4},
}
IMPLS = {
    "spikeloc": "spikeloc, default path (fused backend)",
    "spikeloc-reference": "spikeloc, reference backend (autograd time loop)",
    "spikeloc-baseline": "spikeloc, default path, from the checkout given by --baseline-src",
    "tutorial": "tutorial/notebook per-step loop, out of the box",
    "tutorial+runtime": "tutorial loop with denormal flushing and malloc tuning",
    "snntorch": "snnTorch Leaky in a loop (same runtime settings as spikeloc)",
    "norse": "Norse LIFBoxCell/LIBoxCell in a loop (same runtime settings as spikeloc)",
}
BATCH = 128
N_CLASSES = 12
N_INPUTS = 200
TAU_S = 0.02
LR = 0.01
REPO = Path(__file__).resolve().parents[1]


# ======================================================================================
# Worker: one implementation, driven over stdin/stdout (one JSON object per line)
# ======================================================================================


def _tutorial_step(x, y, W1, W2, dt_s, threads, runtime):
    """A faithful copy of the COMOB starting notebook / cosyne tutorial training step:
    ``einsum`` input layer, a Python loop over time indexing ``h[:, t, :]``, an autograd spike
    function (Heaviside forward, sigmoid-derivative surrogate with beta = 5), the published
    one-step-late reset, a leaky-integrator readout, mean over time, LogSoftmax + NLLLoss."""
    import numpy as np
    import torch
    from torch import nn

    if runtime:
        from spikeloc.engine.runtime import configure_runtime

        configure_runtime(threads)

    beta = 5

    class SurrGradSpike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            out = torch.zeros_like(input)
            out[input > 0] = 1.0
            return out

        @staticmethod
        def backward(ctx, grad_output):
            (input,) = ctx.saved_tensors
            grad_input = grad_output.clone()
            # grad = grad_input/(SurrGradSpike.scale*torch.abs(input)+1.0)**2
            grad = (
                grad_input * beta * torch.sigmoid(beta * input) * (1 - torch.sigmoid(beta * input))
            )
            return grad

    spike_fn = SurrGradSpike.apply
    batch_size, num_time_steps, _ = x.shape
    num_hidden, num_classes = W1.shape[1], W2.shape[1]
    dtype = torch.float

    def snn(input_spikes, W1, W2, tau=TAU_S):
        # First layer: input to hidden
        v = torch.zeros((batch_size, num_hidden), dtype=dtype, device=input_spikes.device)
        s = torch.zeros((batch_size, num_hidden), dtype=dtype, device=input_spikes.device)
        s_rec = [s]
        h = torch.einsum("abc,cd->abd", (input_spikes, W1))
        alpha = np.exp(-dt_s / tau)
        for t in range(num_time_steps - 1):
            new_v = (alpha * v + h[:, t, :]) * (1 - s)  # multiply by 0 after a spike
            s = spike_fn(v - 1)  # threshold of 1
            v = new_v
            s_rec.append(s)
        s_rec = torch.stack(s_rec, dim=1)
        # Second layer: hidden to output
        v = torch.zeros((batch_size, num_classes), dtype=dtype, device=input_spikes.device)
        s = torch.zeros((batch_size, num_classes), dtype=dtype, device=input_spikes.device)
        v_rec = [v]
        h = torch.einsum("abc,cd->abd", (s_rec, W2))
        alpha = np.exp(-dt_s / tau)
        for t in range(num_time_steps - 1):
            v = alpha * v + h[:, t, :]
            v_rec.append(v)
        v_rec = torch.stack(v_rec, dim=1)
        # Return recorded membrane potential of output
        return v_rec

    W1 = nn.Parameter(W1.clone())
    W2 = nn.Parameter(W2.clone())
    optimizer = torch.optim.Adam([W1, W2], lr=LR)
    log_softmax_fn = nn.LogSoftmax(dim=1)
    loss_fn = nn.NLLLoss()

    def step():
        output = snn(x, W1, W2)
        m = torch.mean(output, 1)  # Mean across time dimension
        log_p_y = log_softmax_fn(m)
        loss = loss_fn(log_p_y, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step


def _spikeloc_step(x, y, W1, W2, dt_s, backend):
    import torch

    from spikeloc.core.config import config_from_dict
    from spikeloc.core.models import build_model
    from spikeloc.core.training import loss_fn

    T, H = x.shape[1], W1.shape[1]
    cfg = config_from_dict(
        {
            "preset": "tutorial",
            "backend": backend,
            "stimulus": {"dt_s": dt_s},
            "model": {"n_hidden": H},
            "training": {"batch_size": BATCH, "lr": LR},
        }
    )
    assert cfg.stimulus.n_steps == T
    model = build_model(cfg).to(x.device)
    with torch.no_grad():
        model.W1.copy_(W1)
        model.W2.copy_(W2)
    opt = torch.optim.Adam([model.W1, model.W2], lr=LR)
    ipd = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)

    def step():
        out = model(x)
        loss = loss_fn(out, y, ipd, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def _snntorch_step(x, y, W1, W2, dt_s, threads):
    import math

    import snntorch as snn
    import torch
    from snntorch import surrogate
    from torch import nn

    from spikeloc.engine.runtime import configure_runtime

    configure_runtime(threads)
    alpha = math.exp(-dt_s / TAU_S)
    H = W1.shape[1]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(N_INPUTS, H, bias=False)
            self.lif1 = snn.Leaky(
                beta=alpha,
                threshold=1.0,
                spike_grad=surrogate.sigmoid(slope=5),
                reset_mechanism="zero",
            )
            self.fc2 = nn.Linear(H, N_CLASSES, bias=False)
            self.li2 = snn.Leaky(beta=alpha, threshold=1.0, reset_mechanism="none")

        def forward(self, x):
            mem1 = self.lif1.init_leaky()
            mem2 = self.li2.init_leaky()
            mem2_rec = []
            for step in range(x.shape[1]):
                cur1 = self.fc1(x[:, step])
                spk1, mem1 = self.lif1(cur1, mem1)
                cur2 = self.fc2(spk1)
                _, mem2 = self.li2(cur2, mem2)
                mem2_rec.append(mem2)
            return torch.stack(mem2_rec, dim=1)

    net = Net().to(x.device)  # snnTorch's state (the `mem` buffer) moves with it
    with torch.no_grad():
        net.fc1.weight.copy_(W1.t())
        net.fc2.weight.copy_(W2.t())
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        m = net(x).mean(1)
        loss = loss_fn(m, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def _norse_step(x, y, W1, W2, dt_s, threads):
    import norse.torch as nt
    import torch
    from torch import nn

    from spikeloc.engine.runtime import configure_runtime

    configure_runtime(threads)
    H = W1.shape[1]
    fc1 = nn.Linear(N_INPUTS, H, bias=False)
    fc2 = nn.Linear(H, N_CLASSES, bias=False)
    with torch.no_grad():
        fc1.weight.copy_(W1.t())
        fc2.weight.copy_(W2.t())
    lif = nt.LIFBoxCell(nt.LIFBoxParameters(tau_mem_inv=torch.tensor(1 / TAU_S)), dt=dt_s)
    li = nt.LIBoxCell(nt.LIBoxParameters(tau_mem_inv=torch.tensor(1 / TAU_S)), dt=dt_s)
    opt = torch.optim.Adam(list(fc1.parameters()) + list(fc2.parameters()), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    xt = x.transpose(0, 1)  # Norse is time-first

    def forward():
        s1 = s2 = None
        vs = []
        for t in range(xt.shape[0]):
            z, s1 = lif(fc1(xt[t]), s1)
            v, s2 = li(fc2(z), s2)
            vs.append(v)
        return torch.stack(vs, dim=1)

    def step():
        loss = loss_fn(forward().mean(1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def worker_main(args) -> None:
    spawn_wall = args.spawn_wall
    t_import0 = time.perf_counter()
    import torch

    torch.set_num_threads(args.threads)
    import_s = time.perf_counter() - t_import0
    data = torch.load(args.data, weights_only=True)
    # spikeloc's training loop keeps spike batches as bool (spikeloc.core.training) and its model
    # takes them as they are; the other implementations get the float32 tensor their code uses
    x_bool = data["x"]
    x = x_bool.to(torch.float32)
    y, W1, W2 = data["y"], data["W1"], data["W2"]
    impl = args.impl
    try:
        if impl in ("spikeloc", "spikeloc-baseline"):  # (the baseline: another PYTHONPATH)
            step = _spikeloc_step(x_bool, y, W1, W2, args.dt, "auto")
        elif impl == "spikeloc-reference":
            step = _spikeloc_step(x_bool, y, W1, W2, args.dt, "reference")
        elif impl == "tutorial":
            step = _tutorial_step(x, y, W1, W2, args.dt, args.threads, runtime=False)
        elif impl == "tutorial+runtime":
            step = _tutorial_step(x, y, W1, W2, args.dt, args.threads, runtime=True)
        elif impl == "snntorch":
            step = _snntorch_step(x, y, W1, W2, args.dt, args.threads)
        elif impl == "norse":
            step = _norse_step(x, y, W1, W2, args.dt, args.threads)
        else:
            raise ValueError(f"unknown implementation {impl!r}")
    except ImportError as exc:
        _send({"skipped": f"{impl}: not installed ({exc.name or exc})"})
        return
    t0 = time.perf_counter()
    loss = step()
    first = time.perf_counter() - t0
    _send(
        {
            "ready": True,
            "first_step_s": time.time() - spawn_wall,
            "first_step_only_s": first,
            "import_s": import_s,
            "loss": loss,
            "threads": torch.get_num_threads(),
        }
    )
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "run":
            wall, cpu = [], []
            for _ in range(cmd["n"]):
                t = time.perf_counter()
                c = time.process_time()
                step()
                wall.append((time.perf_counter() - t) * 1e3)
                cpu.append((time.process_time() - c) * 1e3)
            _send({"wall_ms": wall, "cpu_ms": cpu})
        elif cmd["op"] == "stop":
            _send({"peak_mem_mb": _peak_rss_mb()})
            return


def _peak_rss_mb() -> float:
    """Peak resident memory of this process. ``VmHWM`` belongs to this process's own address
    space; ``ru_maxrss`` would also carry the spawning driver's peak across fork + exec."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _send(obj) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# ======================================================================================
# Driver
# ======================================================================================


class Worker:
    def __init__(
        self,
        impl: str,
        case: dict,
        data_path: str,
        threads: int,
        timeout: float,
        baseline_src: str | None = None,
    ):
        env = dict(os.environ)
        env["OMP_NUM_THREADS"] = str(threads)
        env["MKL_NUM_THREADS"] = str(threads)
        env.setdefault("PYTHONPATH", str(REPO / "src"))
        if impl == "spikeloc-baseline":
            env["PYTHONPATH"] = str(baseline_src)
        self.impl = impl
        self.timeout = timeout
        spawn = time.time()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                "--impl",
                impl,
                "--data",
                data_path,
                "--dt",
                repr(case["dt_s"]),
                "--threads",
                str(threads),
                "--spawn-wall",
                repr(spawn),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def recv(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            return {"skipped": f"{self.impl}: worker exited with code {self.proc.returncode}"}
        return json.loads(line)

    def send(self, obj: dict) -> None:
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def close(self) -> dict:
        try:
            self.send({"op": "stop"})
            out = self.recv()
        except (BrokenPipeError, OSError):
            out = {}
        self.proc.wait(timeout=60)
        return out


def make_case_data(case: dict, path: str) -> float:
    """Inputs (real stimulus generator), labels and initial weights, shared by all workers."""
    import torch

    from spikeloc.core.config import config_from_dict
    from spikeloc.core.models import build_model
    from spikeloc.core.stimuli import make_dataset

    cfg = config_from_dict(
        {"preset": "tutorial", "stimulus": {"dt_s": case["dt_s"]}, "model": {"n_hidden": case["H"]}}
    )
    t0 = time.perf_counter()
    ds = make_dataset(
        BATCH, cfg.stimulus, generator=torch.Generator().manual_seed(1), dtype=torch.bool
    )
    data_s = time.perf_counter() - t0
    model = build_model(cfg, generator=torch.Generator().manual_seed(0))
    torch.save(
        {
            "x": ds.spikes,
            "y": ds.labels,
            "W1": model.W1.detach().clone(),
            "W2": model.W2.detach().clone(),
        },
        path,
    )
    return data_s


def run_case(name: str, case: dict, impls: list[str], reps: int, warmup: int, args) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        data_path = os.path.join(tmp, "data.pt")
        data_s = make_case_data(case, data_path)
        workers: dict[str, Worker] = {}
        rows: dict[str, dict] = {}
        for impl in impls:  # start one at a time: cold-start timings are not contended
            w = Worker(impl, case, data_path, args.threads, args.budget_s, args.baseline_src)
            msg = w.recv()
            if "skipped" in msg:
                print(f"  [T={case['T']}] skip {msg['skipped']}", file=sys.stderr)
                w.proc.wait()
                rows[impl] = {"impl": impl, "skipped": msg["skipped"]}
                continue
            workers[impl] = w
            rows[impl] = {"impl": impl, **msg, "wall_ms": [], "cpu_ms": []}
            print(
                f"  [T={case['T']}] {impl}: first step after {msg['first_step_s']:.1f} s "
                f"({msg['first_step_only_s']:.2f} s for the step itself)",
                file=sys.stderr,
            )
        # warm-up, then the per-implementation repetition count from the time budget
        n_reps: dict[str, int] = {}
        bursts: dict[str, int] = {}
        for impl, w in workers.items():
            w.send({"op": "run", "n": max(1, warmup)})  # >= 1 warm step to size bursts
            msg = w.recv()
            per_step = max(msg["wall_ms"] or [rows[impl]["first_step_only_s"] * 1e3]) / 1e3
            # steps of a second or more: single steps (re-warming is noise next to them)
            bursts[impl] = args.burst if per_step < 1.0 else 1
            per_round = per_step * (bursts[impl] + (bursts[impl] > 1))
            n_reps[impl] = max(1, min(reps, int(args.budget_s / max(per_round, 1e-3))))
        order = list(workers)
        for r in range(max(n_reps.values(), default=0)):
            k = r % max(1, len(order))
            for impl in order[k:] + order[:k]:  # rotate the order every round
                if r >= n_reps[impl]:
                    continue
                # let the previous worker's OpenMP threads stop spinning first (libgomp keeps
                # idle threads busy-waiting for a few ms after each parallel region; on a 2-core
                # machine they would take the next worker's cores)
                time.sleep(args.settle_ms / 1e3)
                # a burst of back-to-back steps, as in training; its first step only re-warms
                # the caches and thread pool after the other workers ran, and is not recorded
                burst = bursts[impl]
                n = burst + 1 if burst > 1 else 1
                workers[impl].send({"op": "run", "n": n})
                msg = workers[impl].recv()
                rows[impl]["wall_ms"] += msg["wall_ms"][n - burst :]
                rows[impl]["cpu_ms"] += msg["cpu_ms"][n - burst :]
                rows[impl]["rounds"] = r + 1
        for impl, w in workers.items():
            rows[impl].update(w.close())
    out = []
    base = rows.get("spikeloc", {}).get("wall_ms")
    base_ms = _median(base) if base else None
    for impl in impls:
        row = rows[impl]
        rec = {"T": case["T"], "H": case["H"], "dt_s": case["dt_s"], "impl": impl}
        rec["description"] = IMPLS[impl]
        rec["data_generation_s"] = data_s
        if "skipped" in row:
            rec["skipped"] = row["skipped"]
            out.append(rec)
            continue
        med = _median(row["wall_ms"])
        rec.update(
            {
                "median_ms": med,
                "ratio_vs_spikeloc": (med / base_ms) if base_ms else None,
                "peak_mem_mb": row.get("peak_mem_mb"),
                "first_step_s": row["first_step_s"],
                "first_step_only_s": row["first_step_only_s"],
                "import_s": row["import_s"],
                "cpu_median_ms": _median(row["cpu_ms"]),
                "reps": len(row["wall_ms"]),
                "rounds": row.get("rounds"),
                "wall_ms": [round(v, 3) for v in row["wall_ms"]],
                "threads": row["threads"],
            }
        )
        out.append(rec)
    return out


def _median(v: list[float]) -> float:
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def machine_info() -> dict:
    import torch

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def print_table(rows: list[dict]) -> None:
    head = f"{'T':>5} {'H':>4} {'implementation':<20} {'median ms':>11} {'x spikeloc':>10} "
    head += f"{'peak MB':>8} {'1st step s':>10} {'reps':>5}"
    print(head)
    print("-" * len(head))
    for r in rows:
        if "skipped" in r:
            print(f"{r['T']:>5} {r['H']:>4} {r['impl']:<20} skipped: {r['skipped']}")
            continue
        ratio = f"{r['ratio_vs_spikeloc']:.1f}" if r["ratio_vs_spikeloc"] else "-"
        print(
            f"{r['T']:>5} {r['H']:>4} {r['impl']:<20} {r['median_ms']:>11.1f} {ratio:>10} "
            f"{r['peak_mem_mb']:>8.0f} {r['first_step_s']:>10.1f} {r['reps']:>5}"
        )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="few repetitions (CI smoke run)")
    p.add_argument("--reps", type=int, default=None, help="rounds per implementation")
    p.add_argument("--warmup", type=int, default=None, help="unmeasured steps after the first")
    p.add_argument("--cases", default="100,1000", help="comma list of T: 100, 1000")
    p.add_argument("--impls", default=",".join(IMPLS), help="comma list of implementations")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--budget-s",
        type=float,
        default=150.0,
        help="measured time per implementation and case: slow loops get fewer repetitions",
    )
    p.add_argument(
        "--burst",
        type=int,
        default=4,
        help="steps recorded per worker per round, run back to back after one unrecorded step "
        "(1: single isolated steps)",
    )
    p.add_argument(
        "--settle-ms",
        type=float,
        default=100.0,
        help="pause before each measured step, so no other worker's threads are still spinning",
    )
    p.add_argument(
        "--baseline-src",
        default=None,
        help="the src/ folder of another checkout (e.g. a git worktree of an earlier commit): "
        "adds the implementation spikeloc-baseline, its default path, interleaved with the rest",
    )
    p.add_argument("--out", default=str(REPO / "benchmarks/results/training_step.json"))
    # worker mode (internal)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--impl", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--dt", type=float, help=argparse.SUPPRESS)
    p.add_argument("--spawn-wall", type=float, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker_main(args)
        return 0
    sys.path.insert(0, str(REPO / "src"))
    reps = args.reps or (3 if args.quick else 25)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    if args.quick:
        args.budget_s = min(args.budget_s, 30.0)
    impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    for i in impls:
        if i not in IMPLS:
            p.error(f"unknown implementation {i!r}; known: {', '.join(IMPLS)}")
    if "spikeloc" not in impls:
        impls.insert(0, "spikeloc")
    if args.baseline_src and "spikeloc-baseline" not in impls:
        impls.insert(1, "spikeloc-baseline")
    if "spikeloc-baseline" in impls and not args.baseline_src:
        p.error("spikeloc-baseline needs --baseline-src")
    load_start = os.getloadavg()
    rows: list[dict] = []
    for name in [c.strip() for c in args.cases.split(",") if c.strip()]:
        if name not in CASES:
            p.error(f"unknown case {name!r}; known: {', '.join(CASES)}")
        print(f"case T={CASES[name]['T']} H={CASES[name]['H']}", file=sys.stderr)
        rows += run_case(name, CASES[name], impls, reps, warmup, args)
    result = {
        "benchmark": "training step (forward + backward + Adam), batch 128, 200 -> H -> 12",
        "machine": machine_info(),
        "torch": __import__("torch").__version__,
        "threads": args.threads,
        "settle_ms": args.settle_ms,
        "burst": args.burst,
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "cases": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print_table(rows)
    print(f"\nload average {load_start} -> {os.getloadavg()}; written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
