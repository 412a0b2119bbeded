"""Training-loop integrations: record a training run while it happens, and register its output
with its parent, data and hyperparameters when it ends well (nothing when it raises).

    with pedigree_client.track(client, output_dir="out", model="acme/intent", version="1.1",
                               base="acme/intent@1.0", datasets={"train": "tickets@2024-06"},
                               licence="Apache-2.0") as run:
        run.log_params(learning_rate=2e-5, epochs=3)
        train_and_save("out")

    trainer = Trainer(..., callbacks=[PedigreeCallback(client, model=..., version=..., base=...)])

Neither imports transformers or torch: `PedigreeCallback` imports transformers when first
named, and the device is read from the torch the training script already imported.
"""

import functools
import platform
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from pedigree_client.client import Client, DatasetUses, VersionRef
from pedigree_client.results import Version

# The training method recorded when none is named, from how the version derives from its base.
METHOD_FOR_RELATION = {
    "finetune": "full_finetune",
    "adapter": "lora",
    "quantized": "quantization",
    "merge": "merge",
    "distillation": "distillation",
    "continued_pretraining": "continued_pretraining",
}
FRAMEWORKS = ("torch", "transformers", "peft")


def framework_versions() -> dict[str, str]:
    """Python's version and those of the installed frameworks (read without importing them)."""
    versions = {"python": platform.python_version()}
    for name in FRAMEWORKS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def device_compute(device: Any = None, *, count: int | None = None) -> dict[str, Any]:
    """The training device as torch reports it: `device` (a torch.device), else cuda when
    available, else cpu; nothing when the script has not imported torch."""
    torch = sys.modules.get("torch")  # the script's own: the client never imports torch
    if torch is None:
        return {}
    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda":
        return {"device_kind": device.type}
    return {
        "device_kind": torch.cuda.get_device_name(device),
        "device_count": count if count is not None else torch.cuda.device_count(),
    }


class TrackedRun:
    """A training run being recorded: hyperparameters, frameworks, device, start and end.
    `finish()` registers `output_dir` as `model@version` with all of it."""

    def __init__(
        self,
        client: Client,
        *,
        output_dir: str | Path,
        model: str,
        version: str,
        base: VersionRef | None = None,
        relation: str = "finetune",
        method: str | None = None,
        datasets: DatasetUses | None = None,
        licence: str | None = None,
        **registration: Any,
    ) -> None:
        self.client = client
        self.output_dir = Path(output_dir)
        self.model = model
        self.label = version
        self.base = base
        self.relation = relation
        self.method = method or METHOD_FOR_RELATION[relation]
        self.datasets = datasets
        self.licence = licence
        self.registration = registration
        self.hyperparameters: dict[str, Any] = {}
        self.framework_versions = framework_versions()
        self.compute: dict[str, Any] = {}
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.duration_s: float | None = None
        self.version: Version | None = None  # once registered
        self._clock = 0.0

    def log_params(self, params: Mapping[str, Any] | None = None, **more: Any) -> None:
        """Record hyperparameters, named as the method's schema names them (learning_rate,
        epochs, batch_size, rank…; others are kept too)."""
        self.hyperparameters.update(params or {}, **more)

    def start(self, *, compute: Mapping[str, Any] | None = None) -> None:
        self.started_at = datetime.now(UTC)
        self._clock = time.monotonic()
        self.compute = dict(device_compute() if compute is None else compute)

    def finish(self) -> Version:
        """Register the output folder with the run recorded so far."""
        self.finished_at = datetime.now(UTC)
        self.duration_s = time.monotonic() - self._clock
        compute = dict(self.compute)
        if compute.get("device_count"):
            compute["gpu_hours"] = round(self.duration_s / 3600 * compute["device_count"], 6)
        training: dict[str, Any] = {
            "framework_versions": self.framework_versions,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat(),
        }
        if compute:
            training["compute"] = compute
        registration = dict(self.registration)
        training |= registration.pop("training", {})
        self.version = self.client.register(
            self.output_dir,
            model=self.model,
            version=self.label,
            base=self.base,
            relation=self.relation,
            method=self.method,
            hyperparameters=self.hyperparameters,
            datasets=self.datasets,
            licence=self.licence,
            training=training,
            **registration,
        )
        return self.version


@contextmanager
def track(
    client: Client,
    *,
    output_dir: str | Path,
    model: str,
    version: str,
    base: VersionRef | None = None,
    relation: str = "finetune",
    method: str | None = None,
    datasets: DatasetUses | None = None,
    licence: str | None = None,
    **registration: Any,
) -> Iterator[TrackedRun]:
    """Record the training done in the block; when it exits without an exception, register
    `output_dir` (saved by the block) as `model@version`, derived from `base` by `relation`,
    trained by `method` (default from the relation) on `datasets`. `registration` takes the
    other arguments of `Client.register` (risk, intended_use, team…)."""
    run = TrackedRun(
        client,
        output_dir=output_dir,
        model=model,
        version=version,
        base=base,
        relation=relation,
        method=method,
        datasets=datasets,
        licence=licence,
        **registration,
    )
    run.start()
    yield run  # an exception in the block propagates from here: nothing is registered
    run.finish()


def training_arguments_hyperparameters(args: Any) -> dict[str, Any]:
    """A transformers TrainingArguments' settings under the schema's names."""
    values = {
        "learning_rate": args.learning_rate,
        "batch_size": args.per_device_train_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "seed": args.seed,
        "optimizer": getattr(args.optim, "value", args.optim),
        "weight_decay": args.weight_decay,
        "lr_scheduler": getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type),
        "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
    }
    # max_steps, when set, overrides the number of epochs.
    if args.max_steps > 0:
        values["max_steps"] = args.max_steps
    else:
        values["epochs"] = args.num_train_epochs
    # A warmup below 1 is a ratio of the total steps.
    if 0 < args.warmup_steps < 1:
        values["warmup_ratio"] = args.warmup_steps
    else:
        values["warmup_steps"] = int(args.warmup_steps)
    return values


@functools.cache
def _callback_class() -> type:
    from transformers import TrainerCallback

    class PedigreeCallback(TrainerCallback):  # type: ignore[misc]  # transformers is untyped
        """Records the run from the Trainer (hyperparameters from its TrainingArguments, the
        device it trains on) and, when training ends, saves the model (and its tokenizer or
        processor) in safetensors to `output_dir` (default: `<args.output_dir>/final`) and
        registers it. Arguments as `track`'s; `hyperparameters` add to or override those
        read from the TrainingArguments. Sharded (FSDP, DeepSpeed) training should save with
        `trainer.save_model` inside `track` instead."""

        def __init__(
            self,
            client: Client,
            *,
            model: str,
            version: str,
            output_dir: str | Path | None = None,
            hyperparameters: Mapping[str, Any] | None = None,
            **tracked: Any,
        ) -> None:
            self.client = client
            self.target = {"model": model, "version": version, **tracked}
            self.output_dir = output_dir
            self.extra_hyperparameters = dict(hyperparameters or {})
            self.run: TrackedRun | None = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            output_dir = self.output_dir or Path(args.output_dir) / "final"
            self.run = TrackedRun(self.client, output_dir=output_dir, **self.target)
            self.run.log_params(training_arguments_hyperparameters(args))
            self.run.log_params(self.extra_hyperparameters)
            count = args.world_size * args.n_gpu if args.device.type == "cuda" else None
            self.run.start(compute=device_compute(args.device, count=count))

        def on_train_end(
            self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any
        ) -> None:
            if self.run is None or not state.is_world_process_zero:
                return
            model.save_pretrained(str(self.run.output_dir))
            processor = kwargs.get("processing_class")
            if processor is not None:
                processor.save_pretrained(str(self.run.output_dir))
            self.run.finish()

    return PedigreeCallback


def __getattr__(name: str) -> Any:
    # PedigreeCallback subclasses transformers' TrainerCallback: built when first named.
    if name == "PedigreeCallback":
        return _callback_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
