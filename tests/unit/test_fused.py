"""The fused engine (``spikeloc.engine``) computes the reference's numbers.

The oracle is ``SNN._reference_forward`` (a plain autograd loop over ``lif_step``). For random
configurations of every option the fused forward must give the same hidden spikes, readout and
membrane trace, and the same loss gradient for W1 and W2 (through ``|W| * sign`` under Dale's
law): relative error <= 1e-10 in float64 and <= 1e-4 in float32. The recurrence alone, every
back end generated from the specification (numba loop and lane-block kernels, Triton in its
interpreter), against the reference loop. Also: what the engine does not cover falls back to
the reference loudly, the input layers against each other, the automatic choice between them,
the closed-form readout, and (when a GPU is present) the CUDA kernels.
"""

from __future__ import annotations

import itertools
import math
import os
import pickle
import random
import warnings
from typing import NamedTuple

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spikeloc import engine
from spikeloc.core.config import DaleConfig, ModelConfig, config_from_dict
from spikeloc.core.models import SNN, SNNOutput
from spikeloc.core.neurons import LIFParameters, LIParameters
from spikeloc.core.stimuli import StimulusConfig, make_dataset
from spikeloc.engine import layers, lif_spec

CUDA = torch.cuda.is_available()
TOL = {torch.float64: 1e-10, torch.float32: 1e-4}


def random_config(rng: random.Random, n_inputs: int = 24) -> ModelConfig:
    """A model configuration with every option drawn at random."""
    tau_h = rng.choice([0.002, 0.005, 0.02])
    return ModelConfig(
        n_inputs=n_inputs,
        n_hidden=rng.choice([3, 8, 13]),
        n_classes=rng.choice([4, 12]),
        tau_hidden_s=tau_h,
        tau_output_s=rng.choice([tau_h, 0.01]),
        threshold=rng.choice([1.0, 0.6]),
        reset=rng.choice(["zero", "subtract"]),
        update_order=rng.choice(["published", "immediate"]),
        detach_reset=rng.random() < 0.3,
        surrogate=rng.choice(["sigmoid", "superspike"]),
        surrogate_beta=rng.choice([5.0, 20.0, 100.0]),
        adaptive_threshold_beta=rng.choice([0.0, 0.0, 0.4]),
        adaptive_threshold_tau_s=rng.choice([None, 0.01]),
        readout=rng.choice(["mean_membrane", "max_membrane", "spike_count", "regression"]),
        init="fan_in",
        dropout=rng.choice([0.0, 0.0, 0.3]),
        dale=DaleConfig(
            enabled=rng.random() < 0.3,
            placement=rng.choice(["random", "contiguous"]),
            hidden_signs=rng.choice(["dale", "excitatory"]),
        ),
    )


def spikes_in(batch: int, T: int, n: int, density: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, T, n, generator=g) < density).float()


def run(cfg: ModelConfig, backend: str, x: torch.Tensor, dtype, seed: int, device="cpu"):
    """Loss (readout loss + a rate term on hidden spikes + a term on output_v), gradients, output.
    A bool ``x`` is given to the model as it is (the training loop's format); other inputs are
    converted to ``dtype``."""
    model = SNN(cfg, 1e-3, generator=torch.Generator().manual_seed(seed), backend=backend)
    model = model.to(device=device, dtype=dtype)
    with torch.no_grad():
        model.W1.mul_(5.0)  # enough drive for lively hidden spikes at these small sizes
    x = x.to(device) if x.dtype == torch.bool else x.to(device=device, dtype=dtype)
    out = model(x, dropout_generator=torch.Generator().manual_seed(7))
    if cfg.readout == "regression":
        loss = ((out.readout - 0.3) ** 2).mean()
    else:
        labels = torch.arange(x.shape[0], device=device) % cfg.n_classes
        loss = F.cross_entropy(out.readout, labels)
    loss = loss + 0.01 * out.hidden_spikes.sum((0, 1)).pow(2).mean()
    loss = loss + 1e-3 * out.output_v.pow(2).mean()
    params = [model.W1, model.W2]
    if loss.requires_grad:
        grads = torch.autograd.grad(loss, params, allow_unused=True, materialize_grads=True)
    else:  # T = 2 in the published order: nothing reaches a recorded spike
        grads = tuple(torch.zeros_like(p) for p in params)
    return loss.detach(), grads, out


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30)) if b.numel() else 0.0


def assert_same(cfg, x, dtype, seed, device="cpu"):
    ref = run(cfg, "reference", x, dtype, seed, device)
    fus = run(cfg, "fused", x, dtype, seed, device)
    tol = TOL[dtype]
    assert torch.equal(fus[2].hidden_spikes, ref[2].hidden_spikes), "hidden spikes differ"
    assert rel_err(fus[0], ref[0]) <= tol, ("loss", rel_err(fus[0], ref[0]))
    for name, gf, gr in zip(("dW1", "dW2"), fus[1], ref[1], strict=True):
        assert rel_err(gf, gr) <= tol, (name, rel_err(gf, gr))
    assert rel_err(fus[2].readout, ref[2].readout) <= tol
    assert rel_err(fus[2].output_v, ref[2].output_v) <= tol
    return ref, fus


# --------------------------------------------------------------------------------------
# fused == reference over random configurations of all options
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_fused_matches_reference_random_config(seed):
    rng = random.Random(seed)
    cfg = random_config(rng)
    T = rng.choice([2, 3, 17, 60, 100])
    x = spikes_in(rng.choice([1, 4]), T, cfg.n_inputs, rng.choice([0.05, 0.3]), seed)
    ref, _ = assert_same(cfg, x, torch.float64, seed)
    assert_same(cfg, x, torch.float32, seed)
    if T >= 17:  # the comparison is not vacuous
        assert float(ref[2].hidden_spikes.detach().sum()) > 0


@pytest.mark.parametrize("seed", range(12))
def test_fused_matches_reference_with_bool_input(seed):
    """Bool spikes (what the training loop passes): the fused model takes its table input layer
    (sums in another order than the reference's GEMM), still within the tolerances."""
    rng = random.Random(300 + seed)
    cfg = random_config(rng, n_inputs=rng.choice([24, 29, 200]))
    T = rng.choice([17, 60, 100])
    # 25% (the dt = 1 ms stimulus) and 2% of bins (dt = 0.1 ms; many silent groups, empty rows)
    x = spikes_in(rng.choice([1, 4]), T, cfg.n_inputs, rng.choice([0.25, 0.02]), seed).bool()
    if layers.cpu_kernels.bit_groups_supported():
        assert layers.choose_input_mode(x, cfg.n_hidden) == "table"
    ref, _ = assert_same(cfg, x, torch.float64, seed)
    assert_same(cfg, x, torch.float32, seed)
    assert float(ref[2].hidden_spikes.detach().sum()) > 0


@pytest.mark.parametrize("seed", range(4))
def test_fused_matches_reference_at_T1000(seed):
    rng = random.Random(100 + seed)
    cfg = random_config(rng)
    x = spikes_in(2, 1000, cfg.n_inputs, 0.05, seed)
    ref, _ = assert_same(cfg, x, torch.float64, seed)
    assert float(ref[2].hidden_spikes.detach().sum()) > 0


def test_fused_matches_reference_sparse_input_path_float64():
    """dt = 0.1 ms stimulus: the automatic choice is the sparse layer; still exact (float64)."""
    st = StimulusConfig(dt_s=1e-4, anf_per_ear=12)
    data = make_dataset(3, st, generator=torch.Generator().manual_seed(0))
    x = data.spikes.float()
    assert layers.choose_input_mode(x, 16) == "sparse"
    cfg = ModelConfig(n_inputs=24, n_hidden=16, init="fan_in", tau_hidden_s=0.005)
    ref, _ = assert_same(cfg, x, torch.float64, 0)
    assert float(ref[2].hidden_spikes.detach().sum()) > 0


def test_published_model_spikes_are_bit_identical_float32():
    """The dense path reproduces the reference rounding step for step (tutorial model)."""
    cfg = config_from_dict({"preset": "tutorial"})
    data = make_dataset(16, cfg.stimulus, generator=torch.Generator().manual_seed(3))
    models = {}
    for backend in ("reference", "fused"):
        m = SNN(cfg.model, cfg.stimulus.dt_s, generator=torch.Generator().manual_seed(1))
        m.backend = backend
        models[backend] = m(data.spikes.float())
    ref, fus = models["reference"], models["fused"]
    assert torch.equal(fus.hidden_spikes, ref.hidden_spikes)
    assert torch.allclose(fus.readout, ref.readout, rtol=1e-5, atol=1e-6)
    assert torch.equal(fus.readout.argmax(1), ref.readout.argmax(1))


def test_engine_covers_every_option_and_auto_picks_it(monkeypatch):
    rng = random.Random(0)
    for _ in range(20):
        m = SNN(random_config(rng), 1e-3)
        assert m.fused_unsupported() is None
        assert engine.unsupported(m.hidden_params) is None
    calls = []
    monkeypatch.setattr(engine, "run_lif", lambda *a, **k: calls.append(a) or "fused")
    assert SNN(random_config(rng), 1e-3)(torch.zeros(1, 5, 24)) == "fused"
    (currents, spec), *_ = calls
    assert isinstance(currents, engine.SpikeInput) and isinstance(spec, engine.LIFSpec)


class RefractoryLIF(NamedTuple):
    """A neuron type the specification does not cover: LIF parameters and one more field."""

    tau_s: float = 0.02
    dt_s: float = 1e-3
    threshold: float = 1.0
    reset: str = "zero"
    update_order: str = "published"
    detach_reset: bool = False
    surrogate: str = "sigmoid"
    beta: float = 5.0
    adaptive_beta: float = 0.0
    adaptive_tau_s: float = 0.02
    refractory_s: float = 0.002

    alpha = LIFParameters.alpha
    rho = LIFParameters.rho


def test_unsupported_neurons_name_the_feature():
    assert engine.unsupported(LIFParameters()) is None
    assert engine.unsupported(RefractoryLIF()) == "RefractoryLIF.refractory_s"
    assert engine.unsupported(LIFParameters(reset="none")) == "reset='none'"
    assert engine.unsupported(LIFParameters(surrogate="fast_sigmoid")) == (
        "surrogate='fast_sigmoid'"
    )
    assert "must be positive" in engine.unsupported(LIFParameters(beta=0.0))
    assert engine.unsupported(object()) == "neuron type object"
    assert "float16" in engine.unsupported(LIFParameters(), dtype=torch.float16)
    with pytest.raises(ValueError, match="do not cover RefractoryLIF.refractory_s"):
        engine.LIFSpec.from_params(RefractoryLIF())


def test_unknown_neuron_type_falls_back_to_the_reference_loudly(monkeypatch):
    """A hidden neuron the specification does not cover runs on the reference loop, with one
    warning line naming the feature; the numbers are the reference's."""
    cfg = config_from_dict({"preset": "tutorial"}).model
    x = spikes_in(3, 40, 200, 0.2, seed=2)
    ref = SNN(cfg, 1e-3, generator=torch.Generator().manual_seed(0), backend="reference")(x)
    monkeypatch.setattr(SNN, "hidden_params", property(lambda self: RefractoryLIF()))
    model = SNN(cfg, 1e-3, generator=torch.Generator().manual_seed(0))
    with pytest.warns(RuntimeWarning) as caught:
        out = model(x)
    (w,) = caught
    message = str(w.message)
    assert "\n" not in message and "RefractoryLIF.refractory_s" in message
    assert "reference" in message
    assert torch.equal(out.hidden_spikes, ref.hidden_spikes)
    assert torch.equal(out.readout, ref.readout)


def test_missing_kernels_fall_back_to_the_reference_loudly(monkeypatch):
    """Without numba (``SPIKELOC_NO_NUMBA=1``) or for a dtype the kernels do not take, the model
    runs the reference loop and says why."""
    cfg = config_from_dict({"preset": "tutorial"}).model
    x = spikes_in(2, 20, 200, 0.2, seed=3)
    model = SNN(cfg, 1e-3, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    with pytest.warns(RuntimeWarning, match="dtype torch.bfloat16"):
        model(x)
    monkeypatch.setattr(layers.cpu_kernels, "available", lambda: False)
    assert engine.unsupported(LIFParameters()) == "cpu tensors without numba"
    with pytest.warns(RuntimeWarning, match="cpu tensors without numba"):
        SNN(cfg, 1e-3)(x)


def test_forward_applies_runtime_settings():
    SNN(ModelConfig(n_inputs=4, n_hidden=2), 1e-3, backend="reference")(torch.zeros(1, 3, 4))
    tiny = torch.tensor([1e-39], dtype=torch.float32)  # a float32 denormal
    assert float(tiny * 1.0) == 0.0  # flushed: configure_runtime ran


# --------------------------------------------------------------------------------------
# The recurrence on its own: every order/reset/adaptation, the graph wrapper on the CPU
# --------------------------------------------------------------------------------------


def test_cpu_path_never_imports_triton():
    import sys

    before = "triton" in sys.modules
    cfg = config_from_dict({"preset": "tutorial"})
    run(cfg.model, "fused", spikes_in(2, 20, 200, 0.2, seed=0), torch.float32, 0)
    assert before or "triton" not in sys.modules


# --------------------------------------------------------------------------------------
# The recurrence alone: every back end generated from the specification vs the reference
# --------------------------------------------------------------------------------------


def _neurons():
    """Every option combination, surrogates and slopes alternating."""
    combos = itertools.product(["published", "immediate"], ["zero", "subtract"], [0.0, 0.4],
                               [False, True])  # fmt: skip
    for i, (order, reset, adaptive, detach) in enumerate(combos):
        yield LIFParameters(
            tau_s=0.01,
            dt_s=1e-3,
            threshold=0.8,
            reset=reset,
            update_order=order,
            detach_reset=detach,
            surrogate="superspike" if i % 3 == 1 else "sigmoid",
            beta=(5.0, 20.0, 7.3)[i % 3],
            adaptive_beta=adaptive,
            adaptive_tau_s=0.005,
        )


def _neuron_id(p: LIFParameters) -> str:
    return f"{p.update_order}-{p.reset}-a{p.adaptive_beta}-d{int(p.detach_reset)}-{p.surrogate}"


NEURONS = list(_neurons())


def check_recurrence(p: LIFParameters, backend: str, n: int, T: int = 60, dtypes=None):
    """``engine.lif_sequence`` on ``backend`` against the reference loop ``SNN._lif_loop``
    (autograd through ``lif_step``): the same spikes bit for bit, dL/dh within TOL."""
    spec = engine.LIFSpec.from_params(p)
    for dtype in dtypes or (torch.float64, torch.float32):
        gen = torch.Generator().manual_seed(n * 1000 + T)
        h = torch.rand(3, T, n, generator=gen, dtype=dtype) * 1.2 * p.threshold
        g = torch.randn(3, T, n, generator=gen, dtype=dtype)
        hr = h.clone().requires_grad_(True)
        s_ref = SNN._lif_loop(hr, p)
        (d_ref,) = torch.autograd.grad(s_ref, hr, g, allow_unused=True, materialize_grads=True)
        hf = h.clone().requires_grad_(True)
        s = engine.lif_sequence(hf.transpose(0, 1), spec, backend=backend).transpose(0, 1)
        (d,) = torch.autograd.grad(s, hf, g, allow_unused=True, materialize_grads=True)
        assert torch.equal(s, s_ref.detach()), (p, dtype)
        assert rel_err(d, d_ref) <= TOL[dtype], (p, dtype, rel_err(d, d_ref))
        assert float(s_ref.detach().sum()) > 0


@pytest.mark.parametrize("p", NEURONS, ids=_neuron_id)
@pytest.mark.parametrize("n", [7, 8])
def test_numba_kernels_match_the_reference_recurrence(p, n):
    """n = 7: the loop kernels; n = 8: the lane-block kernels."""
    if not layers.cpu_kernels.available():
        pytest.skip("numba not installed")
    check_recurrence(p, "numba", n)


@pytest.fixture
def triton_interpreter(monkeypatch):
    """Triton's interpreter (``TRITON_INTERPRET=1``): the generated Triton kernels run on CPU
    tensors. Skipped when triton is not installed."""
    pytest.importorskip("triton")
    from spikeloc.engine import gpu_kernels

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    gpu_kernels._kernel.cache_clear()
    with warnings.catch_warnings():
        # numpy's exp in the interpreter: sigmoid(-large) = 1 / (1 + inf) = 0, as on a GPU
        warnings.filterwarnings("ignore", "overflow encountered in exp", RuntimeWarning)
        yield gpu_kernels
    gpu_kernels._kernel.cache_clear()


@pytest.mark.parametrize("p", NEURONS, ids=_neuron_id)
def test_triton_kernels_match_the_reference_recurrence(p, triton_interpreter):
    check_recurrence(p, "triton", 5, T=40)


@pytest.mark.parametrize("seed", range(6))
def test_triton_engine_matches_reference_model(seed, triton_interpreter, monkeypatch):
    """The whole model with the recurrence on the Triton kernels (interpreted), every option,
    against the reference; and the kernels pass their own check against the CPU kernels."""
    monkeypatch.setattr(layers, "backend_for", lambda device, dtype: "triton")
    rng = random.Random(700 + seed)
    cfg = random_config(rng)
    x = spikes_in(2, rng.choice([17, 60]), cfg.n_inputs, 0.2, seed)
    assert_same(cfg, x, torch.float64, seed)
    assert_same(cfg, x, torch.float32, seed)
    spec = engine.LIFSpec.from_params(SNN(cfg, 1e-3).hidden_params)
    assert triton_interpreter.verified(spec, torch.device("cpu"))


@pytest.mark.parametrize("backend", ["numba", "triton"])
def test_exact_traces_through_the_engine(backend, request):
    """Known single-neuron traces (alpha = 0.5, theta = 1; see test_neurons): the published
    order's one-step-late reset gives doublets, the immediate order resets at once."""
    if backend == "triton":
        request.getfixturevalue("triton_interpreter")
    cases = [
        ({}, [1.5] * 6, [0, 0, 1, 1, 0, 0]),
        ({"reset": "subtract"}, [1.5] * 5, [0, 0, 1, 1, 1]),
        ({"update_order": "immediate"}, [0.8] * 4, [0, 1, 0, 1]),
        ({"update_order": "immediate", "reset": "subtract"}, [0.8] * 4, [0, 1, 0, 1]),
        ({"update_order": "immediate", "adaptive_beta": 1.0}, [1.2] * 3, [1, 0, 1]),
    ]
    half = 1e-3 / math.log(2)
    for options, h, expect in cases:
        p = LIFParameters(tau_s=half, dt_s=1e-3, adaptive_tau_s=half, **options)
        spec = engine.LIFSpec.from_params(p)
        hh = torch.tensor(h, dtype=torch.float64)[:, None, None]
        s = engine.lif_sequence(hh, spec, backend=backend)
        assert s[:, 0, 0].tolist() == expect, options


def test_generated_source_is_the_specification():
    """The generated kernels are straight-line code: the specification's statements with the
    option flags resolved (print one to read it)."""
    spec = engine.LIFSpec(alpha=0.9, threshold=1.0)  # published order, reset to zero
    src, arrays = lif_spec.kernel_source("forward", spec.flags(), "numba")
    print(src)
    assert arrays == ["H", "S", "X", "U"]
    body = src.split("P[pm, 7]", 1)[1]  # after the per-member parameter unpacking
    assert "v = u * (one - s)" in body and "theta * s" not in body and "beta_a" not in body
    assert "if " not in body.replace("(one if x > nil else nil)", "")  # no flag tests left
    lanes, _ = lif_spec.kernel_source("forward", spec.flags(), "numba", lanes=8)
    assert "v7 = u7 * (one - s7)" in lanes and "for n in range" not in lanes
    sub = engine.LIFSpec(alpha=0.9, threshold=1.0, reset="subtract", surrogate="superspike")
    tri, arrays = lif_spec.kernel_source("adjoint", sub.flags(), "triton")
    assert arrays == ["G", "Y", "DH"]  # no S or U: the subtractive reset needs neither
    assert "z = tl.abs(y) + one" in tri and "m = m - theta * lam" in tri
    with pytest.raises(ValueError, match="do not fuse the readout"):
        lif_spec.kernel_source("adjoint", sub.flags(readout=True), "triton")


# --------------------------------------------------------------------------------------
# Input layer: sparse vs dense, automatic choice
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape,density",
    [((3, 40, 16), 0.05), ((8, 300, 200), 0.02), ((2, 7, 5), 0.3), ((4, 50, 24), 0.0)],
)
def test_sparse_input_layer_matches_dense(shape, density):
    x = spikes_in(*shape, density, seed=1)
    if density:
        x[0, 1, 2] = 1.0  # at least one spike
    g = torch.Generator().manual_seed(2)
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        w = torch.randn(shape[2], 11, generator=g, dtype=dtype)
        grad = torch.randn(shape[0], shape[1], 11, generator=g, dtype=dtype)
        out = {}
        for mode in ("dense", "sparse"):
            xx = x.to(dtype).requires_grad_()
            ww = w.clone().requires_grad_()
            h = layers.input_projection(xx, ww, mode=mode).transpose(0, 1)
            out[mode] = (h, *torch.autograd.grad(h, (xx, ww), grad))
        for a, b in zip(out["sparse"], out["dense"], strict=True):
            assert torch.allclose(a, b, rtol=tol, atol=tol)
        exact = x.to(dtype) @ w
        assert torch.allclose(out["sparse"][0], exact, rtol=tol, atol=tol)
        dw = torch.einsum("bti,bth->ih", x.to(dtype), grad)
        assert torch.allclose(out["sparse"][2], dw, rtol=tol, atol=tol * float(dw.abs().max()))


def test_sparse_input_layer_handles_non_binary_values():
    x = spikes_in(3, 64, 16, 0.05, seed=4)
    x[1, 5, 3] = 2.5
    x[2, 9, 0] = -0.75
    w = torch.randn(16, 6, dtype=torch.float64, requires_grad=True)
    plan = layers.sparse_plan(x.double())
    assert plan.values is not None
    h = layers.input_projection(x.double(), w, mode="sparse").transpose(0, 1)
    assert torch.allclose(h, x.double() @ w.detach())
    (dw,) = torch.autograd.grad(h.sum(), w)
    assert torch.allclose(dw, x.double().sum((0, 1))[:, None].expand(16, 6))


def test_nonzero_scan_finds_every_spike():
    for shape, density in (((16, 300, 200), 0.02), ((5, 40, 24), 0.2), ((3, 8, 7), 0.5)):
        x = spikes_in(*shape, density, seed=5)
        found = torch.from_numpy(layers._nonzero_flat(x))
        assert torch.equal(found, x.reshape(-1).nonzero().squeeze(1))


def test_dense_input_layer_is_bit_identical_to_the_reference_gemm():
    """The dense layer pads W1 to a GEMM-friendly width; for 0/1 inputs each output is the
    same in-order sum, so h equals ``x @ W1`` bit for bit (hidden spikes stay identical)."""
    x = spikes_in(16, 100, 200, 0.22, seed=6)
    w = (torch.rand(200, 30, generator=torch.Generator().manual_seed(0)) * 2 - 1) / math.sqrt(12)
    h = layers.input_projection(x, w, mode="dense").transpose(0, 1)
    assert torch.equal(h, x @ w)


def test_padded_dense_layer_from_bool_input_is_bit_identical():
    """The model's dense layer: bool input, converted and transposed in one copy, W1 padded
    to 32 columns; the padding columns are exact zeros and the rest equals ``x @ W1``."""
    x = spikes_in(16, 100, 200, 0.22, seed=8)
    w = (torch.rand(200, 30, generator=torch.Generator().manual_seed(1)) * 2 - 1) / math.sqrt(12)
    w.requires_grad_(True)
    h = layers.input_projection(x.bool(), w, mode="dense", pad=True)
    assert h.shape == (100, 16, 32) and h.transpose(0, 1).is_contiguous()  # batch-major
    assert torch.equal(h[..., 30:], torch.zeros(100, 16, 2))
    assert torch.equal(h[..., :30].transpose(0, 1), x @ w)
    g = torch.randn(100, 16, 32, generator=torch.Generator().manual_seed(2))
    (dw,) = torch.autograd.grad(h, w, g)
    assert torch.allclose(dw, x.reshape(-1, 200).t() @ g.transpose(0, 1)[..., :30].reshape(-1, 30),
                          rtol=1e-5, atol=1e-4)  # fmt: skip


def test_automatic_input_choice_follows_spike_density():
    dense = make_dataset(8, StimulusConfig(dt_s=1e-3), generator=torch.Generator().manual_seed(0))
    sparse = make_dataset(8, StimulusConfig(dt_s=1e-4), generator=torch.Generator().manual_seed(0))
    assert layers.choose_input_mode(dense.spikes.float(), 30) == "dense"  # 22% of bins spike
    table = "table" if layers.cpu_kernels.bit_groups_supported() else "dense"
    assert layers.choose_input_mode(dense.spikes.bool(), 30) == table  # bool: always 0/1
    assert layers.choose_input_mode(sparse.spikes.float(), 100) == "sparse"  # 2.25%
    # bool spikes take the table layer at any density (it skips silent groups of inputs)
    assert layers.choose_input_mode(sparse.spikes.bool(), 100) == (
        "table" if table == "table" else "sparse"
    )
    assert layers.choose_input_mode(sparse.spikes.float(), 100, "dense") == "dense"
    assert layers.choose_input_mode(dense.spikes.float(), 30, "table") == "dense"  # not bool
    layers.set_input_mode("dense")
    try:
        assert layers.choose_input_mode(sparse.spikes.float(), 100) == "dense"
    finally:
        layers.set_input_mode("auto")
    with pytest.raises(ValueError, match="input mode must be one of auto, dense, sparse, table"):
        layers.set_input_mode("fast")


@pytest.mark.parametrize("n_in,H,pad", [(200, 30, True), (203, 30, False), (16, 8, False)])
def test_table_input_layer_matches_the_gemm(n_in, H, pad):
    """Table look-ups (groups of 8 inputs) against ``x @ W1`` and its gradient: same sums in
    another order; padded columns exact zeros; batch-major output like the dense layer."""
    if not layers.cpu_kernels.bit_groups_supported():
        pytest.skip("numba not installed")
    x = spikes_in(6, 40, n_in, 0.25, seed=11).bool()
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        g = torch.Generator().manual_seed(3)
        w = torch.randn(n_in, H, generator=g, dtype=dtype, requires_grad=True)
        h = layers.input_projection(x, w, mode="table", pad=pad)
        Hp = layers._padded_width(H) if pad else H
        assert h.shape == (40, 6, Hp) and h.transpose(0, 1).is_contiguous()
        assert torch.equal(h[..., H:], torch.zeros_like(h[..., H:]))
        exact = x.to(dtype) @ w.detach()
        assert rel_err(h[..., :H].transpose(0, 1), exact) <= tol
        grad = torch.randn(40, 6, Hp, generator=g, dtype=dtype)
        (dw,) = torch.autograd.grad(h, w, grad)
        dw_exact = torch.einsum("bti,bth->ih", x.to(dtype), grad.transpose(0, 1)[..., :H])
        assert rel_err(dw, dw_exact) <= tol


@pytest.mark.parametrize("threads", ["1", "2"])
def test_table_bags_and_scatter_kernels(threads, monkeypatch):
    """The look-ups of each row are the bit patterns (numpy's packbits) of its non-silent
    groups, cut into segments by group; the scatter adds each gradient row to the table rows it
    looks up (against a plain numpy loop), for the generated kernel (contiguous rows; run in
    parts on one or two threads) and the loop kernel (strided rows); rows that nothing looks up
    stay zero, and the result is the same bit for bit whatever the number of parts."""
    if not layers.cpu_kernels.bit_groups_supported():
        pytest.skip("numba not installed")
    import numpy as np

    monkeypatch.setenv("SPIKELOC_KERNEL_THREADS", threads)
    ck = layers.cpu_kernels
    rng = np.random.default_rng(0)
    for K in (200, 203, 5):
        x = rng.random((50, K)) < 0.3
        x[7] = False  # a row with no spike at all: an empty bag
        ng = -(-K // 8)
        packed = np.packbits(np.pad(x, ((0, 0), (0, ng * 8 - K))), axis=1, bitorder="little")
        codes = packed.astype(np.int32) + 256 * np.arange(ng)
        G = rng.standard_normal((50, 24)).astype(np.float32)
        expect = np.zeros((ng * 256, 12), np.float32)
        for r in range(50):
            for c in codes[r][packed[r] != 0]:
                expect[c] += G[r, ::2]
        results = []
        for parts in (1, 2, 3):
            idx, off, cuts = ck.bit_group_bags(x, parts)
            P = min(parts, ng)
            assert off.shape == (51,) and off[0] == 0 and off[-1] == idx.size
            assert cuts.shape == (50, P + 1)
            assert np.array_equal(cuts[:, 0], off[:-1]) and np.array_equal(cuts[:, -1], off[1:])
            for r in range(50):
                assert np.array_equal(idx[off[r] : off[r + 1]], codes[r][packed[r] != 0])
                for p in range(P):  # segment p: the groups from ng * p // P on
                    seg = idx[cuts[r, p] : cuts[r, p + 1]] // 256
                    assert ((seg >= ng * p // P) & (seg < ng * (p + 1) // P)).all()
            assert off[8] == off[7]
            for Gx in (np.ascontiguousarray(G[:, ::2]), G[:, ::2]):  # generated, loop kernel
                got = ck.bit_group_scatter(idx, cuts, Gx, ng * 256)
                assert np.allclose(got, expect, rtol=1e-6, atol=1e-5)
                assert not got[::256].any()  # the silent groups' rows
                results.append(got)
        for got in results[1:]:
            assert np.array_equal(got, results[0])


def test_lane_block_kernels_are_bit_identical_to_the_loop_kernels(monkeypatch):
    """The generated block kernels (units unrolled into registers) against the loop kernels,
    every option combination, float64 and float32: the same numbers bit for bit."""
    if not layers.cpu_kernels.available():
        pytest.skip("numba not installed")
    import itertools

    import numpy as np

    ck = layers.cpu_kernels
    rng = np.random.default_rng(1)
    combos = itertools.product(["published", "immediate"], ["zero", "subtract"], [False, True],
                               [0.0, 0.4])  # fmt: skip
    for i, (order, reset, detach, ab) in enumerate(combos):
        surrogate = "superspike" if i % 3 == 2 else "sigmoid"
        spec = layers.LIFSpec(alpha=0.9, threshold=0.8, reset=reset, order=order,
                              detach_reset=detach, adaptive_beta=ab, rho=0.85,
                              surrogate=surrogate)  # fmt: skip
        dtype = np.float64 if i % 2 else np.float32
        h = (rng.random((3, 40, 8)) * 1.4).astype(dtype)
        G = rng.standard_normal(h.shape).astype(dtype)
        Y = rng.random(h.shape).astype(dtype)
        c = rng.random(40).astype(dtype)  # readout weights and the readout's gradient
        gr = rng.standard_normal((3, 8)).astype(dtype)
        out = {}
        for lanes in ("0", "1"):
            monkeypatch.setenv("SPIKELOC_LANE_KERNELS", lanes)
            if i % 4:  # (the readout variants on a quarter of the combinations: compile time)
                S, X, U, _ = ck.lif_forward(h, spec)
                out[lanes] = (S, X, U, ck.lif_backward(G, Y, S, U, spec))
                continue
            S, X, U, R = ck.lif_forward(h, spec, c)
            out[lanes] = (S, X, U, R, ck.lif_backward(G, Y, S, U, spec),
                          ck.lif_backward(None, Y, S, U, spec, c, gr),
                          ck.lif_backward(G, Y, S, U, spec, c, gr))  # fmt: skip
        for a, b in zip(out["0"], out["1"], strict=True):
            assert (a is None and b is None) or np.array_equal(a, b), spec
        S = out["1"][0]
        assert S.sum() > 0
        if i % 4 == 0:
            assert np.allclose(out["1"][3], np.einsum("t,btn->bn", c, S), rtol=1e-5)
            # the readout's gradient is c_t gr added to dL/ds: the same as passing it as G
            G_all = G + c[None, :, None] * gr[:, None, :]
            assert np.array_equal(out["1"][6], ck.lif_backward(G_all, Y, S, out["1"][2], spec))


@pytest.mark.parametrize("surrogate", ["sigmoid", "superspike"])
def test_kernel_surrogate_derivative_is_torchs_bit_for_bit(surrogate, monkeypatch):
    """The adjoint kernels form sigma' themselves (from torch's sigmoid of the scaled record,
    or from the record for SuperSpike): the same numbers as the torch surrogate, bit for bit.
    With one time step, the immediate order and a detached reset, dL/dh = dL/ds * sigma'(h -
    theta), so dL/ds = 1 exposes sigma' directly; lane-block and loop kernels, float32 and
    float64."""
    if not layers.cpu_kernels.available():
        pytest.skip("numba not installed")
    ck = layers.cpu_kernels
    spec = layers.LIFSpec(alpha=0.9, threshold=0.7, order="immediate", detach_reset=True,
                          surrogate=surrogate, beta=7.3)  # fmt: skip
    for dtype in (torch.float32, torch.float64):
        h = torch.randn(5, 1, 16, generator=torch.Generator().manual_seed(2), dtype=dtype) * 3
        x = (h - spec.threshold) * spec.beta
        if surrogate == "sigmoid":  # torch's sigmoid_backward(beta, sigmoid(beta x))
            y = torch.sigmoid(x)
            expect = torch.ops.aten.sigmoid_backward(torch.full_like(y, spec.beta), y)
        else:
            expect = x.abs().add(1.0).square().reciprocal()
        for lanes in ("0", "1"):
            monkeypatch.setenv("SPIKELOC_LANE_KERNELS", lanes)
            S, X, U, _ = ck.lif_forward(h.numpy(), spec)
            X = torch.from_numpy(X)
            Y = torch.sigmoid(X) if surrogate == "sigmoid" else X
            dh = ck.lif_backward(np.ones_like(S), Y.numpy(), S, U, spec)
            assert np.array_equal(dh, expect.numpy()), (dtype, lanes)
    with pytest.raises(ValueError, match="beta must be positive"):
        ck.lif_forward(h.numpy(), layers.LIFSpec(alpha=0.9, threshold=0.7, beta=0.0))


def test_kernels_on_torch_threads_give_the_same_numbers(monkeypatch):
    """The parallel kernels run in parts on torch's OpenMP threads; the parts never share
    output, so one thread and two give the same numbers bit for bit (an odd batch: unequal
    parts). SPIKELOC_KERNEL_THREADS caps the threads; a bad value is named in the error."""
    if not layers.cpu_kernels.available():
        pytest.skip("numba not installed")
    from spikeloc.engine import kernel_threads as _kernel_threads

    ck = layers.cpu_kernels
    monkeypatch.setenv("SPIKELOC_KERNEL_THREADS", "1")
    assert ck.kernel_threads() == 1
    monkeypatch.setenv("SPIKELOC_KERNEL_THREADS", "two")
    with pytest.raises(ValueError, match="SPIKELOC_KERNEL_THREADS"):
        ck.kernel_threads()
    monkeypatch.setenv("SPIKELOC_KERNEL_THREADS", "0")
    with pytest.raises(ValueError, match="SPIKELOC_KERNEL_THREADS"):
        ck.kernel_threads()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        monkeypatch.setenv("SPIKELOC_KERNEL_THREADS", "2")
        if _kernel_threads.omp_parallel() is not None:
            assert ck.kernel_threads() == 2
        rng = np.random.default_rng(4)
        spec = layers.LIFSpec(alpha=0.9, threshold=0.8)
        h = (rng.random((5, 30, 16)) * 1.4).astype(np.float32)
        G = rng.standard_normal(h.shape).astype(np.float32)
        c = rng.random(30).astype(np.float32)
        gr = rng.standard_normal((5, 16)).astype(np.float32)
        out = {}
        for n in ("1", "2"):
            monkeypatch.setenv("SPIKELOC_KERNEL_THREADS", n)
            S, X, U, R = ck.lif_forward(h, spec, c)
            out[n] = (S, X, U, R, ck.lif_backward(G, np.abs(X), S, U, spec, c, gr))
        for a, b in zip(out["1"], out["2"], strict=True):
            assert np.array_equal(a, b)
        # a forked child does not use the OpenMP pool (it does not survive fork)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.write(write, str(ck.kernel_threads()).encode())
            os._exit(0)
        os.waitpid(pid, 0)
        assert os.read(read, 8) == b"1"
        os.close(read)
        os.close(write)
    finally:
        torch.set_num_threads(threads)


def test_generated_kernels_are_cached_in_the_kernel_dir(tmp_path, monkeypatch):
    """Generated kernel sources go to SPIKELOC_KERNEL_DIR, named by their hash; an unwritable
    directory falls back to a temporary one."""
    if not layers.cpu_kernels.available():
        pytest.skip("numba not installed")
    ck = layers.cpu_kernels
    monkeypatch.setenv("SPIKELOC_KERNEL_DIR", str(tmp_path))
    assert ck._kernel_dir() == str(tmp_path)
    source = "def kernel(a):\n    return a + 1"
    ck._generated.cache_clear()
    try:
        assert ck._generated(source)(41) == 42
        files = [p.name for p in tmp_path.glob("k_*.py")]
        assert len(files) == 1
        ck._generated.cache_clear()
        assert ck._generated(source)(1) == 2  # the same file again
        assert [p.name for p in tmp_path.glob("k_*.py")] == files
    finally:
        ck._generated.cache_clear()
        ck._lif_kernel.cache_clear()
        ck._parallel.cache_clear()
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("SPIKELOC_KERNEL_DIR", str(blocked / "sub"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked / "cache"))
    assert "spikeloc-kernels-" in ck._kernel_dir()


def test_time_weighted_sum_gradient_is_the_outer_product():
    c = torch.rand(30, dtype=torch.float64)
    s = torch.rand(4, 30, 7, dtype=torch.float64, requires_grad=True)
    g = torch.randn(4, 7, dtype=torch.float64)
    (ours,) = torch.autograd.grad(layers.TimeWeightedSum.apply(c, s), s, g)
    (ref,) = torch.autograd.grad(torch.matmul(c, s), s, g)
    assert torch.equal(ours, ref)
    assert torch.equal(layers.TimeWeightedSum.apply(c, s), torch.matmul(c, s))


# --------------------------------------------------------------------------------------
# Closed-form readout and the deferred membrane trace
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["published", "immediate"])
@pytest.mark.parametrize("T", [1, 2, 31, 32, 33, 250])
def test_li_trace_and_mean_weights_match_the_loop(order, T):
    alpha = math.exp(-1e-3 / 0.004)
    i = torch.randn(3, T, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(T))
    ref = SNN._li_loop(i, LIParameters(0.004, 1e-3), order)
    trace = layers.li_trace(i.transpose(0, 1), alpha, order).transpose(0, 1)
    assert torch.allclose(trace, ref, rtol=1e-12, atol=1e-12)
    c = layers.li_mean_weights(T, alpha, order, dtype=torch.float64)
    assert torch.allclose(torch.einsum("t,btk->bk", c, i), ref.mean(1), rtol=1e-12, atol=1e-12)


def test_deferred_output_trace_behaves_like_a_plain_output():
    cfg = config_from_dict({"preset": "tutorial"})
    x = spikes_in(4, 100, 200, 0.2, seed=8)
    m = SNN(cfg.model, 1e-3, generator=torch.Generator().manual_seed(0), backend="fused")
    ref = SNN(cfg.model, 1e-3, generator=torch.Generator().manual_seed(0), backend="reference")
    out, r = m(x), ref(x)
    assert isinstance(out, SNNOutput) and len(out) == 3
    readout, spikes, v = out  # unpacking resolves the deferred trace
    assert v is out.output_v is out[2] and out[1:][1] is v
    assert torch.allclose(v, r.output_v, atol=1e-6) and v.grad_fn is not None
    assert set(out._asdict()) == {"readout", "hidden_spikes", "output_v"}
    again = pickle.loads(pickle.dumps(out))
    assert type(again) is SNNOutput and torch.equal(again.output_v, v)
    with torch.no_grad():
        assert m(x).output_v.grad_fn is None
    assert "output_v=tensor" in repr(out)


# --------------------------------------------------------------------------------------
# CUDA: the same comparisons on the GPU, for every engine (skipped without a GPU)
# --------------------------------------------------------------------------------------


@pytest.mark.skipif(not CUDA, reason="no CUDA device")
@pytest.mark.parametrize("seed", range(6))
def test_cuda_kernels_match_reference(seed):
    """On CUDA the recurrence runs as the generated Triton kernels (float32 and float64) when
    triton is importable, else the reference runs (with a warning)."""
    rng = random.Random(1000 + seed)
    cfg = random_config(rng)
    x = spikes_in(4, rng.choice([50, 300]), cfg.n_inputs, 0.1, seed)
    for dtype in (torch.float32, torch.float64):
        assert_same(cfg, x, dtype, seed, device="cuda")


@pytest.mark.skipif(not CUDA, reason="no CUDA device")
@pytest.mark.parametrize("p", NEURONS, ids=_neuron_id)
def test_cuda_triton_kernels_match_the_reference_recurrence(p):
    pytest.importorskip("triton")
    assert engine.unsupported(p, device="cuda") is None
    gen = torch.Generator().manual_seed(0)
    h = (torch.rand(4, 80, 24, generator=gen) * 1.2 * p.threshold).cuda()
    g = torch.randn(4, 80, 24, generator=gen).cuda()
    hr = h.clone().requires_grad_(True)
    s_ref = SNN._lif_loop(hr, p)
    (d_ref,) = torch.autograd.grad(s_ref, hr, g, allow_unused=True, materialize_grads=True)
    hf = h.clone().requires_grad_(True)
    s = engine.lif_sequence(hf.transpose(0, 1), engine.LIFSpec.from_params(p)).transpose(0, 1)
    (d,) = torch.autograd.grad(s, hf, g, allow_unused=True, materialize_grads=True)
    assert torch.equal(s, s_ref.detach())
    assert rel_err(d, d_ref) <= TOL[torch.float32]


@pytest.mark.skipif(not CUDA, reason="no CUDA device")
def test_cuda_default_engine_on_the_published_model():
    cfg = config_from_dict({"preset": "tutorial"})
    x = spikes_in(32, 100, 200, 0.2, seed=9)
    assert_same(cfg.model, x, torch.float32, 0, device="cuda")
