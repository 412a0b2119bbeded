"""The Python client: register what a training script produced, with its parents, data and
hyperparameters, then evaluate, gate and promote it, with typed answers and exceptions.

    from pedigree_client import Client
    client = Client()  # PEDIGREE_URL and PEDIGREE_TOKEN, or Client(url, token)
    v = client.register("out/", model="acme/intent", version="1.1", base="acme/intent@1.0")

Versions are named by a ref, `MODEL@VERSION`, by numeric id or by a `Version`.
"""

import csv
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit
from urllib.request import url2pathname

from pedigree_client.api import JSON, ApiClient, Param, version_path
from pedigree_client.artefacts import ArtefactError, ArtefactFile, manifest_from_files
from pedigree_client.artefacts.hashing import hash_file
from pedigree_client.artefacts.paths import list_files
from pedigree_client.errors import Conflict, InvalidInput, NotFound, error_from_envelope
from pedigree_client.output import Progress
from pedigree_client.results import (
    FINISHED_STATUSES,
    ComplianceStatus,
    DatasetVersion,
    Decision,
    EvaluationRun,
    Evaluations,
    GateResult,
    Lineage,
    Version,
    from_json,
)
from pedigree_client.uploads import inspect_locally, upload_artefact

# Importing from the Hub reads the card and hashes the snapshot before answering.
IMPORT_READ_TIMEOUT = 3600
# Rows are counted only in text datasets this small: counting reads the whole file again.
ROW_COUNT_MAX_BYTES = 256 * 1024 * 1024

VersionRef = str | int | Version
DatasetRef = str | DatasetVersion
# Role ("train", "validation", "test") → the dataset versions used in it.
DatasetUses = Mapping[str, DatasetRef | Sequence[DatasetRef]]


def default_team(api: ApiClient, *, option: str = "team=") -> str:
    """The caller's team when they are in exactly one; otherwise ask for it by `option`."""
    teams = api.get("me/")["teams"]
    if len(teams) != 1:
        raise InvalidInput(
            None, "invalid", f"Name the team with {option} (yours: {', '.join(teams) or 'none'})."
        )
    return cast(str, teams[0])


def hub_import(
    api: ApiClient,
    repo_id: str,
    *,
    team: str,
    revision: str | None = None,
    snapshot_dir: str | None = None,
    with_bases: bool = False,
    base_revisions: dict[str, str] | None = None,
) -> JSON:
    payload: JSON = {"repo_id": repo_id, "team": team}
    if revision:
        payload["revision"] = revision
    if snapshot_dir:
        payload["snapshot_dir"] = snapshot_dir
    if with_bases:
        payload["with_bases"] = True
    if base_revisions:
        payload["base_revisions"] = dict(base_revisions)
    return api.request(
        "POST", "imports/hf/", json=payload, timeout=(api.timeout, IMPORT_READ_TIMEOUT)
    )


def follow_evaluation(
    api: ApiClient, run: JSON, *, interval: float, deadline: float | None
) -> JSON:
    """Poll the evaluation run (as last seen) every `interval` seconds until it has finished,
    showing its progress; TimeoutError at `deadline` (a time.monotonic()): the run carries on."""
    if run["status"] in FINISHED_STATUSES:
        return run
    with Progress(f"Evaluation #{run['id']}", unit="sample") as progress:
        while True:
            progress.update(
                run["progress"]["done"], total=run["progress"]["total"], status=run["status"]
            )
            if run["status"] in FINISHED_STATUSES:
                return run
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"Evaluation #{run['id']} of {run['version']} is still {run['status']}"
                )
            time.sleep(interval)
            run = api.get(f"evaluation-runs/{run['id']}/")


def inspect_on_server(
    api: ApiClient, path: str, *, interval: float = 1.0, deadline: float | None = None
) -> JSON:
    """`POST artefacts/inspect/` for a path on the server: `{"parameter_count", "manifest"}`.
    A large artefact is inspected by a task there (202 with an inspection): it is polled every
    `interval` seconds until done, and its error raised when refused; TimeoutError at
    `deadline` (a time.monotonic()), the inspection carrying on."""
    answer = api.post("artefacts/inspect/", {"path": path})
    if "status" not in answer:
        return answer
    while answer["status"] not in ("done", "failed"):
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"The inspection of {path} is still {answer['status']}")
        time.sleep(interval)
        answer = api.get(f"artefacts/inspections/{answer['id']}/")
    if answer["status"] == "failed":
        raise error_from_envelope(answer["error"])
    return {"parameter_count": answer["parameter_count"], "manifest": answer["manifest"]}


def submit_registration(api: ApiClient, payload: JSON, *, upload: Path | None = None) -> JSON:
    """`POST /registrations/` with `payload`; with `upload`, those files are inspected here,
    the registration is validated by a dry run (where the server offers one) and only then
    uploaded, so a doomed registration reports every error at once and uploads nothing."""
    if upload is None:
        return api.post("registrations/", payload)
    if not upload.exists():
        raise InvalidInput(
            None, "invalid", f"Nothing exists at {upload}; give the artefact file or folder."
        )
    manifest = inspect_locally(upload)
    _dry_run(api, {**payload, "artefact_digest": manifest.digest})
    upload_id = upload_artefact(api, upload, manifest=manifest)
    return api.post("registrations/", {**payload, "artefact_upload": upload_id})


def _dry_run(api: ApiClient, payload: JSON) -> None:
    # In the body, not the query: a server without dry runs refuses the unknown field (400)
    # where it would ignore an unknown query parameter and register for real.
    try:
        api.post("registrations/", {**payload, "dry_run": True})
    except InvalidInput as error:
        if "dry_run" not in error.fields:
            raise
        others = {name: messages for name, messages in error.fields.items() if name != "dry_run"}
        if others:
            name, messages = next(iter(others.items()))
            raise InvalidInput(error.status, error.code, f"{name}: {messages[0]}", others) from None


def _local_path(path_or_uri: str | Path) -> Path:
    """The file a path or a file:// URI names; other URIs cannot be hashed here."""
    if isinstance(path_or_uri, Path) or "://" not in path_or_uri:
        return Path(path_or_uri)
    parts = urlsplit(path_or_uri)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise InvalidInput(
            None,
            "invalid",
            f"Cannot hash {path_or_uri} here: give a local path or a file:// URI of the data.",
        )
    return Path(url2pathname(parts.path))


def describe_dataset(path: Path) -> tuple[str, int, int | None]:
    """SHA-256, size and (for CSV, TSV and JSON Lines files up to ROW_COUNT_MAX_BYTES) row
    count of a dataset file. A folder's SHA-256 is its manifest digest, as for artefacts."""
    if path.is_dir():
        try:
            listing = list_files(path, exclude=None)
        except ArtefactError as error:
            raise InvalidInput(None, error.code, f"{path}: {error.message}") from None
        files = []
        for relpath, file in listing:
            digest, size = hash_file(file, progress=None)
            files.append(
                ArtefactFile(path=relpath, size=size, sha256=digest, kind="other", safetensors=None)
            )
        manifest = manifest_from_files(files, adapter=None)
        return manifest.digest, manifest.total_size, None
    with Progress(f"Hashing {path.name}", total=path.stat().st_size) as bar:
        digest, size = hash_file(path, progress=bar.update)
    return digest, size, _row_count(path, size)


def _row_count(path: Path, size: int) -> int | None:
    suffix = path.suffix.lower()
    if size > ROW_COUNT_MAX_BYTES or suffix not in (".csv", ".tsv", ".jsonl"):
        return None
    with path.open(encoding="utf-8", newline="") as stream:
        if suffix == ".jsonl":
            return sum(1 for line in stream if line.strip())
        records = csv.reader(stream, delimiter="\t" if suffix == ".tsv" else ",")
        return max(0, sum(1 for _ in records) - 1)  # less the header


class Datasets:
    """`client.datasets`: dataset versions, hashed here and registered by name and label."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    def register(
        self,
        path_or_uri: str | Path,
        *,
        name: str,
        version: str,
        licence: str | None = None,
        team: str | None = None,
        description: str | None = None,
        **attributes: Any,
    ) -> DatasetVersion:
        """Register the file (or folder) at `path_or_uri` (a path or a file:// URI, which
        becomes the version's `uri`) as `name@version`, with its SHA-256, size and row count
        computed here; the dataset `name` is created in `team` (default: your only team) when
        it does not exist. The same bytes under the same label again change nothing and
        answer the registered version, so a training script can run this every time; other
        bytes under a taken label raise Conflict. `attributes` are further fields of
        `POST /api/v1/dataset-versions/` (uri, contains_personal_data, sensitive_attributes,
        known_biases, intended_use)."""
        if isinstance(path_or_uri, str) and "://" in path_or_uri:
            attributes.setdefault("uri", path_or_uri)
        path = _local_path(path_or_uri)
        if not path.exists():
            raise InvalidInput(None, "invalid", f"Nothing exists at {path}; give the data file.")
        sha256, size, rows = describe_dataset(path)
        page = self.api.get("dataset-versions/", dataset=name, version=version)
        if page["results"]:
            found = from_json(DatasetVersion, page["results"][0])
            if found.sha256 != sha256:
                raise Conflict(
                    None,
                    "conflict",
                    f"{found.ref} is already registered with sha256 {found.sha256[:12]}…, but "
                    f"{path} hashes to {sha256[:12]}…: register the changed data under a new "
                    "version.",
                )
            return found
        if not any(found["name"] == name for found in self.api.list_all("datasets/", name=name)):
            dataset: JSON = {"name": name, "team": team or default_team(self.api)}
            if description:
                dataset["description"] = description
            self.api.post("datasets/", dataset)
        payload: JSON = {"dataset": name, "version": version, "sha256": sha256, "size_bytes": size}
        if rows is not None:
            payload["row_count"] = rows
        if licence:
            payload["licence_declared"] = licence
        return from_json(DatasetVersion, self.api.post("dataset-versions/", payload | attributes))

    def get(self, ref: str) -> DatasetVersion:
        """A dataset version by `DATASET@VERSION`."""
        name, _, label = ref.rpartition("@")
        page = self.api.get("dataset-versions/", dataset=name, version=label)
        if not page["results"]:
            raise NotFound(None, "not_found", f"No dataset version {ref} that you can see.")
        return from_json(DatasetVersion, page["results"][0])


class Client:
    """The registry, from Python. `url` and `token` default to PEDIGREE_URL and PEDIGREE_TOKEN;
    503 and 429 answers are retried `retries` times with exponential back-off from `backoff`
    seconds, honouring Retry-After up to `max_delay` seconds; errors raise `PedigreeError`s."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 60,
        retries: int = 4,
        backoff: float = 0.5,
        max_delay: float = 60,
    ) -> None:
        self.api = ApiClient(
            url, token, timeout, retries=retries, backoff=backoff, max_delay=max_delay
        )
        self.datasets = Datasets(self.api)
        # Whether the server routes MODEL@VERSION in version paths (None: not known yet).
        self._refs_in_paths: bool | None = None

    def _on_version(self, method: str, ref: VersionRef, action: str = "", **kwargs: Any) -> JSON:
        """`method` on `versions/<ref>/<action>`. A server that routes only numeric ids
        answers a ref with 404; the ref is then looked up through the versions list."""
        if isinstance(ref, Version):
            ref = ref.id
        if isinstance(ref, int) or ref.isdigit():
            return self.api.request(method, f"versions/{ref}/{action}", **kwargs)
        if self._refs_in_paths is not False:
            try:
                answer = self.api.request(method, version_path(ref, action), **kwargs)
            except NotFound:
                if self._refs_in_paths:
                    raise
            else:
                self._refs_in_paths = True
                return answer
        found = self.api.version(ref)
        answer = (
            found
            if (method, action) == ("GET", "")
            else self.api.request(method, f"versions/{found['id']}/{action}", **kwargs)
        )
        self._refs_in_paths = False
        return answer

    def version(self, ref: VersionRef) -> Version:
        return from_json(Version, self._on_version("GET", ref))

    def inspect(self, path: str, *, interval: float = 1.0, timeout: float | None = None) -> JSON:
        """Inspect files already on the server (a path inside your team's area of its artefact
        roots): `{"parameter_count", "manifest"}`, waiting for the server's task when the
        artefact is too large to hash within one request."""
        deadline = None if timeout is None else time.monotonic() + timeout
        return inspect_on_server(self.api, path, interval=interval, deadline=deadline)

    def register(
        self,
        path: str | Path | None = None,
        *,
        model: str,
        version: str,
        base: VersionRef | None = None,
        relation: str = "finetune",
        parents: Iterable[tuple[VersionRef, str]] = (),
        method: str | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        datasets: DatasetUses | None = None,
        training: Mapping[str, Any] | None = None,
        licence: str | None = None,
        risk: str | None = None,
        intended_use: str | None = None,
        known_limitations: str | None = None,
        description: str | None = None,
        team: str | None = None,
        **attributes: Any,
    ) -> Version:
        """Upload the artefact at `path` and register it as `model@version` in one atomic
        call, with its parents (`base` by `relation`, and `parents` for merges), the training
        run (`method`, `hyperparameters`, `datasets` by role, and `training`: further fields
        such as framework_versions, compute, started_at, code_revision) and its metadata.

        `team` creates the model there when it does not exist. `attributes` are further
        fields of `POST /api/v1/registrations/` (out_of_scope_uses, domain, or
        artefact_path / artefact_digest instead of `path`).
        """
        payload: JSON = {"model": model, "version": version, **attributes}
        if team:
            payload["create_model"] = {"team": team}
        edges = [(base, relation)] if base is not None else []
        edges += list(parents)
        if edges:
            payload["parents"] = [
                {"version": ref.id if isinstance(ref, Version) else ref, "relation": how}
                for ref, how in edges
            ]
        run = _training_run(method, hyperparameters, datasets, training)
        if run:
            payload["training_run"] = run
        for field, value in (
            ("licence_declared", licence),
            ("risk_tier", risk),
            ("intended_use", intended_use),
            ("known_limitations", known_limitations),
            ("description", description),
        ):
            if value is not None:
                payload[field] = value
        upload = Path(path) if path is not None else None
        answer = submit_registration(self.api, payload, upload=upload)
        return from_json(Version, answer["version"])

    def import_hf(
        self,
        repo_id: str,
        *,
        revision: str | None = None,
        team: str | None = None,
        snapshot_dir: str | None = None,
        with_bases: bool = False,
        base_revisions: dict[str, str] | None = None,
    ) -> Version:
        """Import a Hugging Face Hub model revision as an upstream version (or return the one
        imported before), in `team` (default: your only team). Its card's bases become its
        parents (`base_revisions` pins them by commit SHA); `with_bases` imports those not
        imported yet too, else they are recorded as unresolved references."""
        answer = hub_import(
            self.api,
            repo_id,
            team=team or default_team(self.api),
            revision=revision,
            snapshot_dir=snapshot_dir,
            with_bases=with_bases,
            base_revisions=base_revisions,
        )
        return from_json(Version, answer["version"])

    def evaluate(
        self,
        ref: VersionRef,
        suites: str | Iterable[str] | None = None,
        *,
        device: str = "auto",
        wait: bool = True,
        timeout: float | None = None,
        interval: float = 2.0,
    ) -> Evaluations:
        """Evaluate the version on `suites` (names or ids; default: every suite attached to
        its model, as the server decides) in one request the server answers at once. With
        `wait`, poll every `interval` seconds until each run has finished, showing progress;
        TimeoutError after `timeout` seconds (the runs carry on)."""
        payload: JSON = {"device": device}
        if suites is not None:
            payload["suites"] = [suites] if isinstance(suites, str) else list(suites)
        answer = self._on_version("POST", ref, "evaluations/", json=payload)
        requested = Evaluations.from_json(answer)
        if not wait:
            return requested
        deadline = None if timeout is None else time.monotonic() + timeout
        runs = [
            follow_evaluation(self.api, run, interval=interval, deadline=deadline)
            for run in answer["runs"]
        ]
        return replace(requested, runs=tuple(from_json(EvaluationRun, run) for run in runs))

    def evaluation(self, run_id: int) -> EvaluationRun:
        return from_json(EvaluationRun, self.api.get(f"evaluation-runs/{run_id}/"))

    def gate(
        self,
        ref: VersionRef,
        stage: str,
        *,
        use: str = "commercial",
        distribution: str = "hosted",
    ) -> GateResult:
        """May the version enter `stage`? Every check with its reasons; changes nothing."""
        params: dict[str, Param] = {"stage": stage, "use": use, "distribution": distribution}
        return GateResult.from_json(self._on_version("GET", ref, "gate/", params=params))

    def compliance(self, ref: VersionRef) -> ComplianceStatus:
        """The version's current compliance, recomputed by the server: whether it still passes
        the gate of its stage and the next one, with every failing check and what to do."""
        return from_json(ComplianceStatus, self._on_version("GET", ref, "compliance/"))

    def promote(
        self,
        ref: VersionRef,
        stage: str,
        *,
        use: str = "commercial",
        distribution: str = "hosted",
        justification: str = "",
        replace_production: bool = False,
    ) -> Decision:
        """Move the version to `stage` if the gate passes; `PromotionRefused` (with the
        recorded decision) if it does not."""
        payload = {
            "stage": stage,
            "use": use,
            "distribution": distribution,
            "justification": justification,
            "replace_production": replace_production,
        }
        return Decision.from_json(self._on_version("POST", ref, "promote/", json=payload))

    def lineage(
        self, ref: VersionRef, *, direction: str = "both", depth: int | None = None
    ) -> Lineage:
        """The lineage graph around the version: `direction` both, ancestors or descendants,
        within `depth` generations."""
        params: dict[str, Param] = {"direction": direction}
        if depth is not None:
            params["depth"] = depth
        graph = self._on_version("GET", ref, "lineage/", params=params)
        return from_json(Lineage, graph)


def _training_run(
    method: str | None,
    hyperparameters: Mapping[str, Any] | None,
    datasets: DatasetUses | None,
    training: Mapping[str, Any] | None,
) -> JSON:
    run: JSON = dict(training or {})
    if method is not None:
        run["method"] = method
    if hyperparameters is not None:
        run["hyperparameters"] = dict(hyperparameters)
    uses = [
        {"dataset_version": ref.ref if isinstance(ref, DatasetVersion) else ref, "role": role}
        for role, refs in (datasets or {}).items()
        for ref in ([refs] if isinstance(refs, str | DatasetVersion) else refs)
    ]
    if uses:
        run["datasets"] = uses
    if run and "method" not in run:
        message = "Name the training method that used these hyperparameters and datasets."
        raise InvalidInput(None, "invalid", message, {"training_run.method": [message]})
    return run
