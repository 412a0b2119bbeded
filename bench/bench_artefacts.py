"""Benchmark the artefact layer: hashing throughput and header inspection cost.

    python bench/bench_artefacts.py [--hash-mib 1024] [--sparse-gib 8]

Hashing is compared with `openssl dgst -sha256` on the same page-cached file (best of 3 each).
Header inspection is timed on a small safetensors file and on a multi-GiB sparse one with the
same header layout: equal times show that no tensor data is read.
"""

import argparse
import json
import os
import shutil
import statistics
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pedigree_client.artefacts import inspect_safetensors, sha256_file

MIB = 1024 * 1024
HASH_TARGET_RATIO = 0.90
TENSORS = 64


def best_of(runs: int, work: Callable[[], str]) -> tuple[float, str]:
    """Fastest wall time of `runs` calls, and the result (which must not vary)."""
    times, results = [], set()
    for _ in range(runs):
        start = time.perf_counter()
        results.add(work())
        times.append(time.perf_counter() - start)
    assert len(results) == 1, results
    return min(times), results.pop()


def openssl_sha256(path: Path) -> str:
    output = subprocess.run(
        ["openssl", "dgst", "-sha256", "-r", str(path)], check=True, capture_output=True, text=True
    ).stdout
    return output.split()[0]


def write_random(path: Path, size: int) -> None:
    with path.open("wb") as stream:
        for _ in range(size // (16 * MIB)):
            stream.write(os.urandom(16 * MIB))
        stream.write(os.urandom(size % (16 * MIB)))


def write_safetensors_header(path: Path, *, elements_per_tensor: int) -> int:
    """Write only the header of an F32 file with TENSORS tensors, then extend the file to its
    full size with truncate, so large files are sparse. Returns the file size."""
    tensor_bytes = elements_per_tensor * 4
    header = {
        "__metadata__": {"format": "pt"},
        **{
            f"model.layers.{i}.weight": {
                "dtype": "F32",
                "shape": [elements_per_tensor],
                "data_offsets": [i * tensor_bytes, (i + 1) * tensor_bytes],
            }
            for i in range(TENSORS)
        },
    }
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)  # the alignment padding safetensors itself writes
    size = 8 + len(encoded) + TENSORS * tensor_bytes
    with path.open("wb") as stream:
        stream.write(struct.pack("<Q", len(encoded)) + encoded)
        stream.truncate(size)
    return size


def median_ms(runs: int, work: Callable[[], object]) -> float:
    work()  # first call pays for imports and the cold header read
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def bench_hash(folder: Path, size_mib: int) -> None:
    path = folder / "random.bin"
    write_random(path, size_mib * MIB)
    sha256_file(path)  # warm-up: both tools then read from the page cache

    ours, our_digest = best_of(3, lambda: sha256_file(path))
    theirs, their_digest = best_of(3, lambda: openssl_sha256(path))
    assert our_digest == their_digest, (our_digest, their_digest)

    ours_rate, theirs_rate = size_mib / ours, size_mib / theirs
    print(
        f"hash ({size_mib} MiB, page cache): pedigree {ours_rate:.0f} MiB/s, "
        f"openssl {theirs_rate:.0f} MiB/s, ratio {ours_rate / theirs_rate:.2f} "
        f"(target >= {HASH_TARGET_RATIO:.2f})"
    )
    path.unlink()


def bench_inspect(folder: Path, sparse_gib: int, runs: int) -> None:
    small = folder / "small.safetensors"
    large = folder / "large.safetensors"
    small_size = write_safetensors_header(small, elements_per_tensor=16)
    large_size = write_safetensors_header(
        large, elements_per_tensor=sparse_gib * 1024 * MIB // (4 * TENSORS)
    )
    # Sparse: the file system holds the header, not the data the size promises.
    allocated = large.stat().st_blocks * 512

    small_ms = median_ms(runs, lambda: inspect_safetensors(small))
    large_ms = median_ms(runs, lambda: inspect_safetensors(large))
    print(
        f"inspect ({TENSORS} tensors, median of {runs}): small ({small_size} B) {small_ms:.3f} ms, "
        f"sparse ({large_size / 1024**3:.1f} GiB, {allocated // 1024} KiB on disk) "
        f"{large_ms:.3f} ms, ratio {large_ms / small_ms:.2f} (near 1: no tensor data read)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hash-mib", type=int, default=1024, help="size of the hashed file")
    parser.add_argument("--sparse-gib", type=int, default=8, help="size of the sparse file")
    parser.add_argument("--runs", type=int, default=200, help="inspection runs per file")
    options = parser.parse_args()
    if shutil.which("openssl") is None:
        raise SystemExit("openssl is not on PATH; install it to compare hashing speed.")

    with tempfile.TemporaryDirectory(prefix="pedigree-bench-") as folder:
        bench_hash(Path(folder), options.hash_mib)
        bench_inspect(Path(folder), options.sparse_gib, options.runs)


if __name__ == "__main__":
    main()
