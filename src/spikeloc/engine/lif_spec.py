r"""The LIF family's update, written once, and the kernels generated from it.

Every fused back end of the engine -- the numba loop kernels and lane-block (SIMD) kernels of
:mod:`spikeloc.engine.cpu_kernels`, the Triton kernel of :mod:`spikeloc.engine.gpu_kernels` --
is generated from the tables below: :data:`FORWARD` (the update over time, recording what the
adjoint needs) and :data:`ADJOINT` (the hand-derived backward pass over time), one
:class:`Sweep` per update order. A sweep is a few guarded statements in the arithmetic common
to all back ends (``+ - * /``, ``spike(x) = H(x)``, ``abs``); the guards are the option flags
of :meth:`LIFSpec.flags`, resolved when the source is generated, so every kernel is
straight-line code specialised to one combination of options. :func:`kernel_source` returns
the generated source (print it to read a kernel).

The oracle is the autograd reference :func:`spikeloc.core.neurons.lif_step`; the equations are
those of :mod:`spikeloc.core.neurons`, as discretised there:

* ``published`` order: ``s_{t+1} = H(v_t - theta_t)``, ``u_{t+1} = alpha v_t + h_t``,
  ``v_{t+1} = u_{t+1} (1 - s_t)`` (reset to zero) or ``u_{t+1} - theta s_t`` (subtract);
  recorded ``[s_0 = 0, s_1, ..., s_{T-1}]``;
* ``immediate`` order: ``u_t = alpha v_{t-1} + h_t``, ``s_t = H(u_t - theta_t)``,
  ``v_t = u_t (1 - s_t)`` or ``u_t - theta s_t``;
* adaptive threshold ``theta_t = theta + beta_a a_t``, ``a <- rho a + (1 - rho) s_new``.

Each statement is one IEEE operation per operator, in the reference's order (no fast-math, no
fused multiply-add in the CPU kernels), so forward spikes equal the reference's bit for bit for
the same input currents.

**Records.** The forward sweep stores ``S`` (spikes), ``X = beta * (v - theta_t)`` (the
surrogate's argument times its slope: zero where no spike is recorded) and, for reset to zero
with the reset in the graph, ``U`` (the pre-reset potential).

**Adjoint.** With ``lam_t = dL/dv_t``, ``mu_t = dL/ds_t`` (total), ``kap_t = dL/da_t``,
``sigma'`` the surrogate derivative, ``g_t`` the gradient arriving at the recorded spike::

    published:  q = mu_{t+1} sigma'_t;  lam_t = q + alpha E_t lam_{t+1}
                kap_t = rho kap_{t+1} - beta_a q;  dL/dh_t = lam_{t+1} E_t
                mu_t = g_t + R_t lam_{t+1} + (1 - rho) kap_t
    immediate:  lam_t = alpha nu_{t+1};  kap_t = rho kap_{t+1} - beta_a mu_{t+1} sigma'_{t+1}
                mu_t = g_t + R_t lam_t + (1 - rho) kap_t;  nu_t = mu_t sigma'_t + E_t lam_t
                dL/dh_t = nu_t

with ``E_t = 1 - s_t`` (zero) or 1 (subtract) and ``R_t = -u`` (zero), ``-theta``
(subtract) or 0 (``detach_reset``). The surrogate derivative is read from ``y``: for the
sigmoid ``y = sigmoid(X)`` (``beta y (1 - y)``; the CPU back end has torch evaluate the
``exp`` over all steps at once, the Triton kernel evaluates it in place), for SuperSpike
``y = X`` (``1 / (|y| + 1)^2``).

**Readout fusion.** With the ``readout`` flag the forward sweep also sums ``R = sum_t c_t s_t``
(the closed-form leaky-integrator readout, :func:`spikeloc.engine.layers.li_mean_weights`), and
the adjoint adds ``c_t dL/dR`` to ``g_t`` (``grad_s``: a gradient for the spikes themselves
arrives too).

**Ensembles.** A leading member dimension ``(E, batch, T, n)`` folds into the kernels' rows
(``E * batch``); the option flags are shared by all members (one generated kernel) and the
numeric values (alpha, theta, ...) are a ``(E, len(PARAMS))`` table that the numba kernels read
per row (row ``b`` takes member ``b // (rows // E)``'s values; a layer alone passes a table of one
row) -- a change of the emitter's prologue, not of the specification. The Triton kernels still
take one row of values (``(len(PARAMS),)``): on CUDA an ensemble runs one kernel call per set
of values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LIFSpec",
    "PARAMS",
    "Sweep",
    "Step",
    "FORWARD",
    "ADJOINT",
    "unsupported_feature",
    "kernel_source",
]

#: The numeric values every kernel receives, in this order, as an array of the data's dtype (so
#: no operation is promoted to double). ``omr = 1 - rho``; ``one``/``nil`` are 1 and 0 typed.
PARAMS = ("alpha", "theta", "beta_a", "rho", "omr", "one", "nil", "beta")

#: The fields of a neuron's parameters that the specification covers (those of
#: :class:`spikeloc.core.neurons.LIFParameters`); a neuron type with any other field is not a
#: member of the family the kernels compute.
COVERED_FIELDS = frozenset(
    {"tau_s", "dt_s", "threshold", "reset", "update_order", "detach_reset", "surrogate", "beta",
     "adaptive_beta", "adaptive_tau_s"}
)  # fmt: skip
_CHOICES = {
    "reset": ("zero", "subtract"),
    "update_order": ("published", "immediate"),
    "surrogate": ("sigmoid", "superspike"),
}


def unsupported_feature(p: Any) -> str | None:
    """None when neuron parameters ``p`` are a member of the LIF family the specification
    covers, else a short phrase naming the first feature it does not (for a warning)."""
    fields = getattr(p, "_fields", None)
    name = type(p).__name__
    if fields is None:
        return f"neuron type {name}"
    extra = [f for f in fields if f not in COVERED_FIELDS]
    if extra:
        return f"{name}.{extra[0]}"
    missing = sorted(COVERED_FIELDS - set(fields))
    if missing:
        return f"{name} without {missing[0]}"
    for field, choices in _CHOICES.items():
        if getattr(p, field) not in choices:
            return f"{field}={getattr(p, field)!r}"
    if not float(p.beta) > 0:
        return f"surrogate beta={p.beta!r} (must be positive)"
    return None


@dataclass(frozen=True)
class LIFSpec:
    """One LIF layer's options and values, as the kernels take them (hashable)."""

    alpha: float
    threshold: float
    reset: str = "zero"
    order: str = "published"
    detach_reset: bool = False
    surrogate: str = "sigmoid"
    beta: float = 5.0
    adaptive_beta: float = 0.0
    rho: float = 0.0

    @classmethod
    def from_params(cls, p: Any) -> LIFSpec:
        """From neuron parameters with the fields of :class:`spikeloc.core.neurons.LIFParameters`
        (read by name: the engine does not import the model core)."""
        reason = unsupported_feature(p)
        if reason is not None:
            raise ValueError(f"the LIF kernels do not cover {reason}")
        adaptive = float(p.adaptive_beta)
        return cls(
            alpha=p.alpha,
            threshold=float(p.threshold),
            reset=p.reset,
            order=p.update_order,
            detach_reset=bool(p.detach_reset),
            surrogate=p.surrogate,
            beta=float(p.beta),
            adaptive_beta=adaptive,
            rho=p.rho if adaptive else 0.0,
        )

    @property
    def adaptive(self) -> bool:
        return self.adaptive_beta != 0.0

    @property
    def needs_u(self) -> bool:
        """Whether backward needs the pre-reset potential (reset-to-zero gradient ``-u``)."""
        return self.reset == "zero" and not self.detach_reset

    def flags(self, *, readout: bool = False, grad_s: bool = True) -> dict[str, bool]:
        """The guards of the specification for this layer."""
        return {
            "published": self.order == "published",
            "zero": self.reset == "zero",
            "adaptive": self.adaptive,
            "coupled": not self.detach_reset,
            "sigmoid": self.surrogate == "sigmoid",
            "store_u": self.needs_u,
            "readout": readout,
            "grad_s": grad_s,
        }

    def values(self) -> tuple[float, ...]:
        """The numbers of :data:`PARAMS`."""
        return (self.alpha, self.threshold, self.adaptive_beta, self.rho, 1.0 - self.rho, 1.0,
                0.0, self.beta)  # fmt: skip


# ======================================================================================
# The specification
# ======================================================================================

Guarded = tuple[str, ...]  # (guard, ...): a Python expression over the flags; "" is always


@dataclass(frozen=True)
class Step:
    """The statements of one time step ``t`` (or of one fixed step before the time loop).

    ``loads``: ``(guard, local, array, time)``; ``body``: ``(guard, target, expression)``;
    ``stores``: ``(guard, array, time, expression)``. ``time`` is an index expression in ``t``
    and ``T``."""

    loads: tuple[Guarded, ...] = ()
    body: tuple[Guarded, ...] = ()
    stores: tuple[Guarded, ...] = ()


@dataclass(frozen=True)
class Sweep:
    """One kernel: per row (a batch element's units), zero-initialised ``state``, values
    loaded once per row (``row_loads``: ``(guard, local, array)``), a ``before`` step, the
    time loop ``for i in range(count): t = first + direction * i`` over ``step``, and values
    stored once per row (``row_stores``: ``(guard, array, expression)``).

    ``arrays``: ``(guard, name, kind)`` in kernel-signature order; kind ``unit`` (rows, T, n),
    ``time`` (T,) or ``row`` (rows, n)."""

    arrays: tuple[Guarded, ...]
    state: tuple[Guarded, ...]
    loop: tuple[str, str, int]  # (first, count, direction)
    step: Step
    before: Step = Step()
    row_loads: tuple[Guarded, ...] = ()
    row_stores: tuple[Guarded, ...] = ()


_THRESHOLD = (
    ("adaptive", "thr", "theta + beta_a * a"),
    ("not adaptive", "thr", "theta"),
)
_FORWARD_ARRAYS = (("", "H", "unit"), ("", "S", "unit"), ("", "X", "unit"),
                   ("store_u", "U", "unit"), ("readout", "C", "time"),
                   ("readout", "R", "row"))  # fmt: skip

#: The update over time, per update order.
FORWARD = {
    "published": Sweep(
        arrays=_FORWARD_ARRAYS,
        state=(("", "v"), ("", "s"), ("adaptive", "a"), ("readout", "r")),
        before=Step(
            stores=(("", "S", "0", "nil"), ("", "X", "T - 1", "nil"), ("store_u", "U", "0", "nil"))
        ),
        loop=("0", "T - 1", 1),
        step=Step(
            loads=(("", "h", "H", "t"), ("readout", "ct", "C", "t + 1")),
            body=(
                *_THRESHOLD,
                ("", "x", "v - thr"),
                ("", "sn", "spike(x)"),  # s_{t+1} = H(v_t - theta_t)
                ("", "u", "alpha * v + h"),
                ("zero", "v", "u * (one - s)"),  # the reset acts one step late
                ("not zero", "v", "u - theta * s"),
                ("adaptive", "a", "rho * a + omr * sn"),
                ("", "s", "sn"),
                ("readout", "r", "r + ct * sn"),
            ),
            stores=(
                ("", "X", "t", "x * beta"),
                ("", "S", "t + 1", "sn"),
                ("store_u", "U", "t + 1", "u"),
            ),  # fmt: skip
        ),
        row_stores=(("readout", "R", "r"),),
    ),
    "immediate": Sweep(
        arrays=_FORWARD_ARRAYS,
        state=(("", "v"), ("adaptive", "a"), ("readout", "r")),
        loop=("0", "T", 1),
        step=Step(
            loads=(("", "h", "H", "t"), ("readout", "ct", "C", "t")),
            body=(
                ("", "u", "alpha * v + h"),
                *_THRESHOLD,
                ("", "x", "u - thr"),
                ("", "sn", "spike(x)"),  # s_t = H(u_t - theta_t)
                ("zero", "v", "u * (one - sn)"),
                ("not zero", "v", "u - theta * sn"),
                ("adaptive", "a", "rho * a + omr * sn"),
                ("readout", "r", "r + ct * sn"),
            ),
            stores=(("", "X", "t", "x * beta"), ("", "S", "t", "sn"), ("store_u", "U", "t", "u")),
        ),
        row_stores=(("readout", "R", "r"),),
    ),
}

_ADJOINT_ARRAYS = (("grad_s", "G", "unit"), ("", "Y", "unit"), ("zero", "S", "unit"),
                   ("zero and coupled", "U", "unit"), ("", "DH", "unit"),
                   ("readout", "C", "time"), ("readout", "GR", "row"))  # fmt: skip
# g: dL/ds_t arriving from outside the layer (the spikes' own gradient and/or c_t dL/dR)
_GRADIENT = (
    ("grad_s and readout", "g", "ct * gr + gs"),
    ("readout and not grad_s", "g", "ct * gr"),
    ("grad_s and not readout", "g", "gs"),
)
_GRADIENT_LOADS = (("grad_s", "gs", "G", "t"), ("readout", "ct", "C", "t"))
_SURROGATE = (
    ("sigmoid", "sg", "beta * (one - y) * y"),  # torch's sigmoid_backward(beta, y)
    ("not sigmoid", "z", "abs(y) + one"),  # SuperSpike 1 / (beta |x| + 1)^2, y = beta x
    ("not sigmoid", "sg", "one / (z * z)"),
)
_STEP_LOADS = (*_GRADIENT_LOADS, ("", "y", "Y", "t"), ("zero", "s", "S", "t"))

#: The adjoint (backward pass) over time, per update order: dL/dh from dL/ds.
ADJOINT = {
    "published": Sweep(
        arrays=_ADJOINT_ARRAYS,
        state=(("", "lam"), ("", "mu"), ("adaptive", "kap")),  # lam_{t+1}, mu_{t+1}, kap_{t+1}
        row_loads=(("readout", "gr", "GR"),),
        before=Step(  # t = T - 1: v_{T-1} reaches no recorded spike
            loads=(("grad_s", "gs", "G", "T - 1"), ("readout", "ct", "C", "T - 1")),
            body=(*_GRADIENT, ("", "mu", "g")),
            stores=(("", "DH", "T - 1", "nil"),),
        ),
        loop=("T - 2", "T - 1", -1),
        step=Step(
            loads=(*_STEP_LOADS, ("zero and coupled", "u", "U", "t + 1")),
            body=(
                *_GRADIENT,
                *_SURROGATE,
                ("", "q", "mu * sg"),
                ("zero", "e", "one - s"),
                ("zero", "lamn", "q + alpha * e * lam"),
                ("zero", "d", "lam * e"),
                ("not zero", "lamn", "q + alpha * lam"),
                ("not zero", "d", "lam"),
                ("", "m", "g"),
                ("coupled and zero", "m", "m - lam * u"),
                ("coupled and not zero", "m", "m - theta * lam"),
                ("adaptive", "kap", "rho * kap - beta_a * q"),
                ("adaptive", "m", "m + omr * kap"),
                ("", "mu", "m"),
                ("", "lam", "lamn"),
            ),
            stores=(("", "DH", "t", "d"),),
        ),
    ),
    "immediate": Sweep(
        arrays=_ADJOINT_ARRAYS,
        # lam holds nu_{t+1}, mu holds q_{t+1} = mu_{t+1} sigma'_{t+1}
        state=(("", "lam"), ("", "mu"), ("adaptive", "kap")),
        row_loads=(("readout", "gr", "GR"),),
        loop=("T - 1", "T", -1),
        step=Step(
            loads=(*_STEP_LOADS, ("zero and coupled", "u", "U", "t")),
            body=(
                *_GRADIENT,
                ("", "ln", "alpha * lam"),
                ("", "m", "g"),
                ("coupled and zero", "m", "m - ln * u"),
                ("coupled and not zero", "m", "m - theta * ln"),
                ("adaptive", "kap", "rho * kap - beta_a * mu"),
                ("adaptive", "m", "m + omr * kap"),
                *_SURROGATE,
                ("", "mu", "m * sg"),
                ("zero", "lam", "mu + ln * (one - s)"),
                ("not zero", "lam", "mu + ln"),
            ),
            stores=(("", "DH", "t", "lam"),),
        ),
    ),
}

_SWEEPS = {"forward": FORWARD, "adjoint": ADJOINT}


# ======================================================================================
# Emitters: numba (loop kernel, lane-block kernel) and Triton
# ======================================================================================

_NAME = re.compile(r"\b[A-Za-z_]\w*\b")


def _on(guard: str, flags: dict[str, bool]) -> bool:
    return not guard or bool(eval(guard, {"__builtins__": {}}, flags))  # noqa: S307 - fixed tables


def _active(items, flags) -> list[tuple]:
    return [item[1:] for item in items if _on(item[0], flags)]


def _subst(expr: str, mapping: dict[str, str]) -> str:
    return _NAME.sub(lambda m: mapping.get(m.group(0), m.group(0)), expr)


def _time(first: str, direction: int) -> str:
    """The loop's time index ``t`` in terms of its counter ``i``."""
    if first == "0" and direction > 0:
        return "i"
    return f"{first} {'+' if direction > 0 else '-'} i"


def _tag(array: str, time: str) -> str:
    """Name of the row view of ``array`` at ``time`` (``S`` at ``t + 1`` -> ``S_tp1``)."""
    return f"{array}_" + time.replace(" ", "").replace("+", "p").replace("-", "m")


class _Emitter:
    """Shared walk over a sweep; the dialects say how a value is named, loaded and stored."""

    def __init__(self, sweep: Sweep, flags: dict[str, bool]):
        self.flags = flags
        self.arrays = _active(sweep.arrays, flags)  # (name, kind)
        self.kind = dict(self.arrays)
        self.state = [s for (s,) in _active(sweep.state, flags)]
        self.row_loads = _active(sweep.row_loads, flags)
        self.row_stores = _active(sweep.row_stores, flags)
        self.before = self._step(sweep.before)
        self.step = self._step(sweep.step)
        self.loop = sweep.loop
        self.lines: list[str] = []

    def _step(self, step: Step):
        loads = _active(step.loads, self.flags)
        unit = [(v, a, t) for v, a, t in loads if self.kind[a] == "unit"]
        timed = [(v, a, t) for v, a, t in loads if self.kind[a] == "time"]
        return unit, timed, _active(step.body, self.flags), _active(step.stores, self.flags)

    def out(self, indent: int, text: str) -> None:
        self.lines.append(" " * indent + text)


def _spike_numba(expr: str) -> str:
    return re.sub(r"spike\((\w+)\)", r"(one if \1 > nil else nil)", expr)


def _numba_source(sweep: Sweep, flags: dict[str, bool], lanes: int | None) -> str:
    """``kernel(part, nparts, *arrays, P)`` over rows ``part`` of ``nparts``. ``lanes=None``:
    the loop kernel (any width and strides; the units in an inner loop, the state in small
    arrays); else the lane-block kernel for exactly ``lanes`` units (C-contiguous arrays),
    every unit's state a named scalar, so it stays in registers over the time loop."""
    e = _Emitter(sweep, flags)
    names = [a for a, _ in e.arrays]
    unit_arrays = [a for a, k in e.arrays if k == "unit"]
    out = e.out
    out(0, f"def kernel(part, nparts, {', '.join(names)}, P):")
    out(4, f"B, T, N = {unit_arrays[0]}.shape")
    # P (M, len(PARAMS)): one row of values per member; the B rows are M members' rows one
    # after the other (B // M each), so row b reads the values of member b // (B // M)
    out(4, "BM = B // P.shape[0]")
    C = lanes
    lane_vars = set(e.state) | {v for v, _ in e.row_loads}
    for unit, _, body, _ in (e.before, e.step):
        lane_vars |= {v for v, _, _ in unit} | {t for t, _ in body}

    if C is None:
        for s in e.state:
            out(4, f"{s}_ = np.empty(N, P.dtype)")
    out(4, "for b in range(B * part // nparts, B * (part + 1) // nparts):")
    out(8, "pm = b // BM")
    out(8, ", ".join(PARAMS) + " = " + ", ".join(f"P[pm, {i}]" for i in range(len(PARAMS))))
    for a, k in e.arrays:
        if k in ("unit", "row"):
            out(8, f"{a}b = {a}[b]")

    def lane(expr: str, k: int) -> str:
        return _spike_numba(_subst(expr, {v: f"{v}{k}" for v in lane_vars}))

    if C is None:
        out(8, "for n in range(N):")
        for s in e.state:
            out(12, f"{s}_[n] = nil")
    else:
        for s in e.state:
            for k in range(C):
                out(8, f"{s}{k} = nil")

    def emit_step(indent: int, step) -> None:
        unit, timed, body, stores = step
        if not (unit or body or stores):
            return
        views = dict.fromkeys([(a, t) for _, a, t in unit] + [(a, t) for a, t, _ in stores])
        for a, t in views:
            out(indent, f"{_tag(a, t)} = {a}b[{t}]")
        for v, a, t in timed:
            out(indent, f"{v} = {a}[{t}]")
        if C is None:
            read = {n for _, x in body for n in _NAME.findall(x)}
            read |= {n for _, _, x in stores for n in _NAME.findall(x)}
            written = {tgt for tgt, _ in body}
            out(indent, "for n in range(N):")
            i2 = indent + 4
            for s in e.state:
                if s in read or s in written:
                    out(i2, f"{s} = {s}_[n]")
            for v, a in e.row_loads:
                out(i2, f"{v} = {a}b[n]")
            for v, a, t in unit:
                out(i2, f"{v} = {_tag(a, t)}[n]")
            for tgt, x in body:
                out(i2, f"{tgt} = {_spike_numba(x)}")
            for a, t, x in stores:
                out(i2, f"{_tag(a, t)}[n] = {_spike_numba(x)}")
            for s in e.state:
                if s in written:
                    out(i2, f"{s}_[n] = {s}")
            return
        for v, a, t in unit:  # loads and stores one statement at a time, the body lane by lane
            for k in range(C):
                out(indent, f"{v}{k} = {_tag(a, t)}[{k}]")
        for k in range(C):
            for tgt, x in body:
                out(indent, f"{tgt}{k} = {lane(x, k)}")
        for a, t, x in stores:
            for k in range(C):
                out(indent, f"{_tag(a, t)}[{k}] = {lane(x, k)}")

    if C is not None:
        for v, a in e.row_loads:
            for k in range(C):
                out(8, f"{v}{k} = {a}b[{k}]")
    emit_step(8, e.before)
    first, count, direction = e.loop
    out(8, f"for i in range({count}):")
    out(12, f"t = {_time(first, direction)}")
    emit_step(12, e.step)
    if e.row_stores:
        if C is None:
            out(8, "for n in range(N):")
            for a, x in e.row_stores:
                out(12, f"{a}b[n] = {_subst(x, {s: f'{s}_[n]' for s in e.state})}")
        else:
            for a, x in e.row_stores:
                for k in range(C):
                    out(8, f"{a}b[{k}] = {lane(x, k)}")
    return "\n".join(e.lines)


def _triton_source(sweep: Sweep, flags: dict[str, bool]) -> str:
    """``kernel(*arrays, P, T, BN, BLOCK)``: one program per block of ``BLOCK`` of the ``BN``
    (batch x units) columns of time-major contiguous ``(T, BN)`` arrays, the time loop inside.
    The sigmoid surrogate's ``y = sigmoid(X)`` is evaluated in the kernel (``Y`` holds ``X``)."""
    e = _Emitter(sweep, flags)
    out = e.out
    names = [a for a, _ in e.arrays]
    out(0, "@triton.jit(do_not_specialize=['T', 'BN'])")
    out(0, f"def kernel({', '.join(names)}, P, T, BN, BLOCK: tl.constexpr):")
    out(4, "offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)")
    out(4, "mask = offs < BN")
    out(4, "BN64 = BN.to(tl.int64)")
    for i, p in enumerate(PARAMS):
        out(4, f"{p} = tl.load(P + {i})")
    for s in e.state:
        out(4, f"{s} = tl.full([BLOCK], 0, dtype=P.dtype.element_ty)")
    for v, a in e.row_loads:
        out(4, f"{v} = tl.load({a} + offs, mask=mask, other=0.0)")

    def expr(x: str) -> str:
        x = re.sub(r"spike\((\w+)\)", r"tl.where(\1 > nil, one, nil)", x)
        return re.sub(r"\babs\(", "tl.abs(", x)

    def emit_step(indent: int, step) -> None:
        unit, timed, body, stores = step
        for v, a, t in unit:
            load = f"tl.load({a} + ({t}) * BN64 + offs, mask=mask, other=0.0)"
            if a == "Y" and e.flags["sigmoid"]:
                load = f"one / (one + tl.exp(-{load}))"
            out(indent, f"{v} = {load}")
        for v, a, t in timed:
            out(indent, f"{v} = tl.load({a} + ({t}))")
        for tgt, x in body:
            out(indent, f"{tgt} = {expr(x)}")
        for a, t, x in stores:
            out(indent, f"tl.store({a} + ({t}) * BN64 + offs, {expr(x)}, mask=mask)")

    emit_step(4, e.before)
    first, count, direction = e.loop
    out(4, f"for i in range(0, {count}):")
    out(8, f"t = {_time(first, direction)}")
    emit_step(8, e.step)
    for a, x in e.row_stores:
        out(4, f"tl.store({a} + offs, {expr(x)}, mask=mask)")
    return "\n".join(e.lines)


def kernel_source(
    direction: str, flags: dict[str, bool], dialect: str, lanes: int | None = None
) -> tuple[str, list[str]]:
    """The generated source of one kernel and the names of the arrays it takes, in order
    (then ``P``, the values of :data:`PARAMS`).

    ``direction``: ``forward`` or ``adjoint``; ``flags``: :meth:`LIFSpec.flags`; ``dialect``:
    ``numba`` (``lanes``: None for the loop kernel, else the lane-block width) or ``triton``.
    """
    sweep = _SWEEPS[direction]["published" if flags["published"] else "immediate"]
    arrays = [a for a, _ in _active(sweep.arrays, flags)]
    if dialect == "numba":
        return _numba_source(sweep, flags, lanes), arrays
    if dialect == "triton":
        if flags["readout"]:
            raise ValueError("the Triton kernels do not fuse the readout")
        return _triton_source(sweep, flags), arrays
    raise ValueError(f"unknown dialect {dialect!r}")
