"""The local SLURM cluster listens on loopback only (scripts/slurm/check-loopback.sh)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slurm_helpers import REPO  # noqa: E402

pytestmark = pytest.mark.slurm

CHECK = REPO / "scripts" / "slurm" / "check-loopback.sh"
SLURM_PORTS = {6817, 6818, 6819}  # slurmctld, slurmd, slurmdbd (scripts/slurm/start-local-slurm.sh)


def run_check() -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(CHECK)], capture_output=True, text=True, timeout=60)


def proc_net_listeners() -> list[tuple[str, int]]:
    """(address, port) of every listening TCP socket, from /proc/net/tcp{,6} (no ss needed)."""
    out = []
    for name, width in (("tcp", 8), ("tcp6", 32)):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            f = line.split()
            if len(f) < 4 or f[3] != "0A":  # 0A = LISTEN
                continue
            addr_hex, port_hex = f[1].split(":")
            assert len(addr_hex) == width
            raw = bytes.fromhex(addr_hex)
            if width == 8:
                addr = ".".join(str(b) for b in raw[::-1])
            else:  # four little-endian 32-bit words
                words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]
                b = b"".join(words)
                if b[:12] == b"\0" * 10 + b"\xff\xff":
                    addr = "::ffff:" + ".".join(str(x) for x in b[12:])
                else:
                    import ipaddress

                    addr = str(ipaddress.IPv6Address(b))
            out.append((addr, int(port_hex, 16)))
    return out


def is_loopback(addr: str) -> bool:
    return addr.startswith("127.") or addr == "::1" or addr.startswith("::ffff:127.")


def assert_loopback_only(when: str) -> str:
    r = run_check()
    assert r.returncode == 0, f"{when}: check-loopback.sh failed:\n{r.stdout}\n{r.stderr}"
    # cross-check without ss: nothing listens on the slurm ports except on loopback
    bad = [(a, p) for a, p in proc_net_listeners() if p in SLURM_PORTS and not is_loopback(a)]
    assert not bad, f"{when}: slurm ports listening on non-loopback addresses: {bad}"
    return r.stdout


def test_cluster_loopback_only():
    if os.geteuid() != 0:
        pytest.skip(
            "needs root: ss shows other users' processes (slurmctld runs as slurm) only to root"
        )
    listing = assert_loopback_only("idle cluster")
    for port in ("6817", "6818"):
        assert f" {port} " in listing, f"port {port} not listed:\n{listing}"

    # While a job step runs, srun and slurmstepd open more ports: check those too.
    jid = (
        subprocess.run(
            [
                "sbatch",
                "--parsable",
                "-J",
                "loopback-check",
                "-D",
                "/tmp",
                "-o",
                "/dev/null",
                "-t",
                "1",
                "-c",
                "1",
                "--mem",
                "50",
                "--wrap",
                "srun sleep 8",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        .stdout.strip()
        .split(";")[0]
    )
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end:
            steps = subprocess.run(
                ["squeue", "-h", "-s", "-j", jid, "-o", "%i"],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.split()
            if f"{jid}.0" in steps:
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"job {jid} never started its srun step")
        time.sleep(1)
        listing = assert_loopback_only(f"while step {jid}.0 runs")
        assert "srun" in listing or "slurmstepd" in listing, listing
    finally:
        subprocess.run(["scancel", jid], capture_output=True, timeout=30)
