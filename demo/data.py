"""Synthetic customer-support tickets for the demo's transfer-learning story.

Tickets are templated English sentences labelled with one of four intents. Each carries
two sensitive attributes, ``region`` and ``age_band``, so fairness checks have groups to
compare. Tickets from the ``south`` region are written in a regional dialect whose
everyday words overlap with *other* intents in standard usage (the "account" is the bill,
the "box" is the router, "getting in" is signing in). A classifier that never saw
southern tickets, or saw them mislabelled, therefore serves that group worse, while one
trained on balanced data serves everyone well. That is the bias the demo's fairness gate
has to catch.

Everything is driven by a seeded ``random.Random``: the same seed gives byte-identical
CSV files.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

LABELS: tuple[str, ...] = ("billing", "technical", "account", "shipping")
REGIONS: tuple[str, ...] = ("north", "south", "east", "west")
AGE_BANDS: tuple[str, ...] = ("18-34", "35-54", "55+")
DIALECT_REGION = "south"
CSV_COLUMNS: tuple[str, ...] = ("ticket_id", "text", "label", "region", "age_band")

DEFAULT_SEED = 20261122

# The label an annotator who reads the southern dialect literally gives the two intents
# whose dialect words are false friends: the "account" is taken for an account problem,
# the "box" for a parcel. A consistent mistake rather than uniform noise: a model learns a
# systematic error, it averages random ones away.
_LITERAL_MISREADING = {"billing": "account", "technical": "shipping"}

_PRODUCTS = (
    "StreamBox Plus",
    "CloudDrive",
    "FitTrack",
    "HomeHub",
    "PhotoVault",
    "MusicMax",
    "SmartThermo",
    "NoteSync",
    "GameCloud",
    "SecureVPN",
    "KidsZone",
    "SoundBar Pro",
)
_DEVICES = (
    "iPhone",
    "Pixel phone",
    "Galaxy phone",
    "iPad",
    "MacBook",
    "Windows laptop",
    "Chromebook",
    "smart TV",
    "Android tablet",
    "desktop PC",
)
_PLACES = (
    "Springfield",
    "Riverside",
    "Fairview",
    "Madison",
    "Georgetown",
    "Franklin",
    "Greenville",
    "Bristol",
    "Salem",
    "Oakdale",
    "Ashland",
    "Milton",
)
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")

_STANDARD_TEMPLATES: dict[str, tuple[str, ...]] = {
    "billing": (
        "I was charged {amount} twice for my {product} subscription this month.",
        "My invoice for {month} shows {amount}, which is more than my plan costs.",
        "Can you explain the extra {amount} fee on my latest bill?",
        "Please refund the {amount} charge for the {product} plan I cancelled.",
        "My credit card was billed {amount} after the free trial of {product} ended.",
        "Why did the monthly price of {product} go up by {amount}?",
        "I need a receipt for the {amount} payment I made in {month}.",
        "The payment of {amount} failed but my bank still took the money.",
        "I was billed for {product} even though I never subscribed to it.",
        "Could you switch my {product} billing from monthly to yearly to save money?",
        "I paid {amount} for express delivery but order {order} still came late, refund it.",
        "I changed my account email and now I am being charged {amount} twice.",
    ),
    "technical": (
        "The {product} app keeps crashing on my {device} whenever I open it.",
        "{product} will not connect to the wifi on my {device}.",
        "I get error code {code} when I try to sync {product} on my {device}.",
        "Since the last update my {device} freezes while running {product}.",
        "The screen goes black in {product} on my {device} after a few minutes.",
        "Video playback in {product} stutters and buffers on my {device}.",
        "{product} shows a blank page after I log in on my {device}.",
        "Bluetooth pairing between my {device} and {product} keeps failing.",
        "Notifications from {product} stopped working on my {device}.",
        "{product} is extremely slow and drains the battery on my {device}.",
        "After paying for the upgrade, {product} keeps crashing on my {device}.",
        "The {product} that was delivered yesterday will not switch on at all.",
    ),
    "account": (
        "I forgot my password and the reset email never arrives.",
        "Please change the email address on my {product} profile.",
        "I want to close my account and have my personal data deleted.",
        "My account was locked after too many sign-in attempts.",
        "How do I add a family member as a second user on my {product} account?",
        "I need to update my username and the phone number on my profile.",
        "Someone may have logged into my account from {place}, please secure it.",
        "Two-factor authentication codes are not reaching my phone.",
        "I have two accounts by mistake, can you merge them into one?",
        "Please remove my old email from the account so I can sign up again.",
        "The app on my {device} logs me out and says my account does not exist.",
        "I changed my shipping address but my profile still shows the old one.",
    ),
    "shipping": (
        "My order {order} has not arrived yet, it was due last {weekday}.",
        "The tracking for order {order} has shown no update for a week.",
        "The package with my {product} was delivered to the wrong address in {place}.",
        "The parcel arrived damaged and the {product} inside is broken.",
        "Can I change the delivery address for order {order} to {place}?",
        "The courier left my parcel outside in the rain on {weekday}.",
        "How long does express delivery to {place} usually take?",
        "I received someone else's order instead of my {product}.",
        "Order {order} says delivered but nothing came to my door in {place}.",
        "Please ship the replacement {product} to my new address in {place}.",
        "I was charged for order {order} but it never shipped.",
        "The app says order {order} is out for delivery but the tracking page errors out.",
    ),
}

# Southern tickets: same intents, regional vocabulary. Many of these words mean something
# else in standard support language, which is what makes the group hard for a model that
# has not seen it.
_DIALECT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "billing": (
        "Y'all put {amount} too much on my account this go-round, I reckon somebody slipped.",
        "My account for {month} come to {amount}, that ain't what we shook on.",
        "Reckon y'all owe me {amount} back, my account got wrote up twice for {product}.",
        "Fixin' to quit {product} if my account keeps climbin' {amount} every month.",
        "My account says I still owe {amount} but I done settled up in {month}.",
        "Y'all charged my account {amount} for that {product} I done sent back.",
        "Send me a paper for the {amount} I paid on my account, the bank's askin'.",
        "My account shows {amount} for {product} and I ain't never signed up for it.",
    ),
    "technical": (
        "My box done quit on me again, the little light just keeps a-blinkin'.",
        "That {product} box won't hold a signal, keeps droppin' out every evenin'.",
        "The box is plumb dead since y'all sent that update, {product} won't come up.",
        "My box gets hot as a skillet and {product} goes dark on the {device}.",
        "Reckon my box is busted, {product} spins and spins on the {device} and never loads.",
        "The box keeps hollerin' code {code} and {product} won't play on my {device}.",
        "Y'all's box keeps a-restartin' itself and {product} cuts out mid show.",
        "That box ain't talkin' to my {device} no more, {product} just sits there.",
    ),
    "shipping": (
        "My order {order} ain't showed up and I done paid good money for it.",
        "Y'all took my money for {order} back on {weekday} and I still ain't got nothin'.",
        "Paid up front for the {product} and it's still sittin' somewhere, order {order}.",
        "Reckon my {product} got lost somewhere 'tween here and {place}, I done paid.",
        "The {product} I paid for come all busted up, order {order}.",
        "Fixin' to want my money back if order {order} don't get here by {weekday}.",
        "Y'all left what I paid for out yonder by the road in {place}.",
        "I paid for order {order} but some feller in {place} got my {product}.",
    ),
    "account": (
        "I can't get in no more, the thing keeps sayin' my secret word's wrong.",
        "Y'all got my old mail on file, fix it so {product} quits sendin' it yonder.",
        "Fixin' to be shut of {product} for good, wipe my name and all my doin's off.",
        "It done locked me out after I tried gettin' in a few times.",
        "How do I set my young'un up to get in on my {product}?",
        "Somebody over in {place} got into my {product} and it sure weren't me.",
        "The little number y'all text me to get in ain't never comin' through.",
        "I reckon I got two logins by accident, can y'all put 'em together?",
    ),
}

_STANDARD_OPENERS = ("", "", "Hi,", "Hello,", "Hi there,", "Hey,", "Hello support team,")
_FORMAL_OPENERS = ("Dear Sir or Madam,", "Good afternoon,", "Good morning,", "Hello,")
_DIALECT_OPENERS = ("", "Howdy,", "Hey y'all,", "Well,", "Mornin',")
_STANDARD_CLOSERS = (
    "",
    "",
    "Thanks.",
    "Thank you in advance.",
    "Please help.",
    "Cheers.",
    "This is urgent.",
)
_FORMAL_CLOSERS = ("Kind regards.", "Thank you for your help.", "Yours sincerely.", "")
_DIALECT_CLOSERS = ("", "Much obliged.", "Bless y'all.", "Thank ya kindly.", "Appreciate it.")

_TYPO_RATE = 0.08

Size = Literal["full", "small"]
_SIZES: dict[str, dict[str, int]] = {
    "full": {"train": 800, "eval": 400},
    "small": {"train": 200, "eval": 128},
}


def generate_tickets(
    *,
    n: int,
    seed: int,
    region_weights: Mapping[str, float] | None = None,
    label_noise_for: Mapping[str, float] | None = None,
) -> list[dict[str, str]]:
    """Return ``n`` tickets as dicts with the keys of :data:`CSV_COLUMNS`.

    Labels and age bands are spread evenly and regions by ``region_weights`` (even when
    omitted), using exact quotas rather than independent draws, so small sets still have
    every group populated. ``label_noise_for`` maps a region to the fraction of its billing
    and technical tickets labelled by their literal words (billing as ``account``,
    technical as ``shipping``), the mistake of annotators unfamiliar with the dialect.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}.")
    weights = _validated_region_weights(region_weights)
    noise = _validated_label_noise(label_noise_for)
    rng = random.Random(seed)

    labels = _shuffled_quota(rng, {label: 1.0 for label in LABELS}, n)
    regions = _shuffled_quota(rng, weights, n)
    age_bands = _shuffled_quota(rng, {band: 1.0 for band in AGE_BANDS}, n)

    rows = []
    for label, region, age_band in zip(labels, regions, age_bands, strict=True):
        text = _render_ticket(rng, label=label, region=region, age_band=age_band)
        rows.append(
            {
                "ticket_id": f"TCK-{rng.getrandbits(40):010x}",
                "text": text,
                "label": label,
                "region": region,
                "age_band": age_band,
            }
        )

    # Corruption draws from its own stream so a noisy set keeps exactly the same texts
    # as the clean set generated from the same seed.
    noise_rng = random.Random(f"{seed}:label-noise")
    for row in rows:
        rate = noise.get(row["region"], 0.0)
        if rate and noise_rng.random() < rate:
            row["label"] = _LITERAL_MISREADING.get(row["label"], row["label"])
    return rows


def write_csv(rows: Sequence[Mapping[str, str]], path: Path) -> Path:
    """Write ``rows`` as UTF-8 CSV with a fixed column order and ``\\n`` line endings."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({column: row[column] for column in CSV_COLUMNS})
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    """Read a ticket CSV written by :func:`write_csv`."""
    with Path(path).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def build_demo_datasets(
    out_dir: Path, *, seed: int = DEFAULT_SEED, size: Size = "full"
) -> dict[str, Path]:
    """Write the demo's four CSV files into ``out_dir`` and return their paths by name.

    - ``train_permissive``: balanced regions, correct labels.
    - ``train_skewed``: the same tickets, but most southern billing and technical ones
      labelled by their literal words, so a model trained on it is clearly unfair to the
      ``south`` group.
    - ``train_noncommercial``: balanced, another seed (registered under CC-BY-NC-4.0).
    - ``eval``: balanced, another seed, at least 30 tickets in every region and age band.
    """
    if size not in _SIZES:
        raise ValueError(f"size must be one of {sorted(_SIZES)}, got {size!r}.")
    counts = _SIZES[size]
    out_dir = Path(out_dir)
    datasets = {
        "train_permissive": generate_tickets(n=counts["train"], seed=seed),
        "train_skewed": generate_tickets(
            n=counts["train"], seed=seed, label_noise_for={DIALECT_REGION: 0.85}
        ),
        "train_noncommercial": generate_tickets(n=counts["train"], seed=seed + 1),
        "eval": generate_tickets(n=counts["eval"], seed=seed + 2),
    }
    return {name: write_csv(rows, out_dir / f"{name}.csv") for name, rows in datasets.items()}


def _render_ticket(rng: random.Random, *, label: str, region: str, age_band: str) -> str:
    templates: Mapping[str, Sequence[str]]
    openers: Sequence[str]
    closers: Sequence[str]
    if region == DIALECT_REGION:
        templates, openers, closers = _DIALECT_TEMPLATES, _DIALECT_OPENERS, _DIALECT_CLOSERS
    elif age_band == "55+" and rng.random() < 0.6:
        templates, openers, closers = _STANDARD_TEMPLATES, _FORMAL_OPENERS, _FORMAL_CLOSERS
    else:
        templates, openers, closers = _STANDARD_TEMPLATES, _STANDARD_OPENERS, _STANDARD_CLOSERS
    body = rng.choice(templates[label]).format_map(_SlotFiller(rng))
    opener = rng.choice(openers)
    if opener.endswith(","):
        body = _continue_sentence(body)
    text = " ".join(part for part in (opener, body, rng.choice(closers)) if part)
    if rng.random() < _TYPO_RATE:
        text = _with_typo(rng, text)
    return text


class _SlotFiller(dict):
    """Fills template slots lazily, so each template only consumes the draws it needs."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self._makers: dict[str, Callable[[], str]] = {
            "amount": lambda: f"${rng.randint(4, 240)}.{rng.choice(('00', '49', '99'))}",
            "product": lambda: rng.choice(_PRODUCTS),
            "device": lambda: rng.choice(_DEVICES),
            "place": lambda: rng.choice(_PLACES),
            "month": lambda: rng.choice(_MONTHS),
            "weekday": lambda: rng.choice(_WEEKDAYS),
            "order": lambda: f"#{rng.randint(100000, 999999)}",
            "code": lambda: f"E{rng.randint(100, 999)}",
        }

    def __missing__(self, key: str) -> str:
        value = self._makers[key]()
        self[key] = value
        return value


def _continue_sentence(body: str) -> str:
    """Lower-case the first word after "Hi," unless it is "I" or a name like "CloudDrive"."""
    first = body.split(" ", 1)[0]
    if first == "I" or first.startswith("I'") or not first[1:].islower():
        return body
    return body[0].lower() + body[1:]


def _with_typo(rng: random.Random, text: str) -> str:
    """Swap two adjacent letters inside one longer word, as hurried typing does."""
    words = text.split(" ")
    candidates = [i for i, word in enumerate(words) if len(word) >= 5 and word.isalpha()]
    if not candidates:
        return text
    index = rng.choice(candidates)
    word = words[index]
    pos = rng.randint(1, len(word) - 3)
    words[index] = word[:pos] + word[pos + 1] + word[pos] + word[pos + 2 :]
    return " ".join(words)


def _shuffled_quota(rng: random.Random, weights: Mapping[str, float], n: int) -> list[str]:
    """``n`` values in proportion to ``weights`` (largest remainder), in random order."""
    total = sum(weights.values())
    exact = {key: n * weight / total for key, weight in weights.items()}
    counts = {key: int(value) for key, value in exact.items()}
    by_remainder = sorted(weights, key=lambda key: (-(exact[key] - counts[key]), key))
    for key in by_remainder[: n - sum(counts.values())]:
        counts[key] += 1
    values = [key for key in weights for _ in range(counts[key])]
    rng.shuffle(values)
    return values


def _validated_region_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    if weights is None:
        return {region: 1.0 for region in REGIONS}
    unknown = set(weights) - set(REGIONS)
    if unknown:
        raise ValueError(f"Unknown regions {sorted(unknown)}; expected some of {REGIONS}.")
    if any(weight < 0 for weight in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError("Region weights must be non-negative and not all zero.")
    return {region: float(weights[region]) for region in REGIONS if weights.get(region)}


def _validated_label_noise(noise: Mapping[str, float] | None) -> dict[str, float]:
    if noise is None:
        return {}
    unknown = set(noise) - set(REGIONS)
    if unknown:
        raise ValueError(f"Unknown regions {sorted(unknown)}; expected some of {REGIONS}.")
    if any(not 0.0 <= rate <= 1.0 for rate in noise.values()):
        raise ValueError("Label-noise rates must lie between 0 and 1.")
    return dict(noise)
