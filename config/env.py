"""Strict parsing of settings from the environment: a bad value stops start-up with a message."""

import base64
import binascii
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def env_bool(name: str, default: bool) -> bool:
    value = env_str(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a boolean; use one of: true, false, 1, 0, yes, no."
    )


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    value = env_str(name)
    if value is None:
        return default
    try:
        parsed = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None
    if parsed < minimum:
        raise ImproperlyConfigured(f"{name}={parsed} must be at least {minimum}.")
    return parsed


def env_list(name: str, default: list[str], *, separator: str = ",") -> list[str]:
    value = env_str(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(separator) if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} must be one of: {', '.join(choices)}.")
    return value


def env_dirs(name: str, default: list[Path]) -> list[Path]:
    raw = env_list(name, [str(path) for path in default], separator=os.pathsep)
    paths = [Path(item).expanduser() for item in raw]
    relative = [str(path) for path in paths if not path.is_absolute()]
    if relative:
        raise ImproperlyConfigured(f"{name} must list absolute paths; got {', '.join(relative)}.")
    return paths


def env_key32(name: str) -> bytes | None:
    """A 32-byte key given as base64 (an Ed25519 private seed or public key)."""
    value = env_str(name)
    if value is None:
        return None
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"{name} is not base64.") from None
    if len(key) != 32:
        raise ImproperlyConfigured(
            f"{name} must encode 32 bytes (an Ed25519 key), not {len(key)}; "
            "`manage.py audit_checkpoint --new-key` prints a pair."
        )
    return key


def env_rate(name: str, default: str) -> str:
    """A request rate as DRF's throttles read it: `<count>/<second|minute|hour|day>`."""
    value = env_str(name, default) or default
    count, _, period = value.partition("/")
    if not (count.isascii() and count.isdigit()) or period not in (
        "second",
        "minute",
        "hour",
        "day",
    ):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a rate; write it as COUNT/PERIOD, e.g. 120/minute "
            "(period: second, minute, hour or day)."
        )
    return value


def env_cache(name: str, default_dir: Path, *, key_prefix: str) -> dict[str, object]:
    """Django's `CACHES["default"]` from a URL: `redis://`, `rediss://` or `unix://` (Redis,
    shared by every process on every machine), `file:///absolute/folder` (shared by the
    processes of one machine), `locmem://` (one process only). Unset: a folder under the data
    directory, so the throttles' counters hold across the web processes of one machine."""
    value = env_str(name)
    if value is None:
        return {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(default_dir),
            "KEY_PREFIX": key_prefix,
        }
    scheme, _, rest = value.partition("://")
    if scheme in ("redis", "rediss", "unix") and rest:
        return {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": value,
            "KEY_PREFIX": key_prefix,
        }
    if scheme == "file" and rest.startswith("/"):
        return {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": rest,
            "KEY_PREFIX": key_prefix,
        }
    if value == "locmem://":
        return {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "KEY_PREFIX": key_prefix,
        }
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a cache URL; use redis://HOST:PORT/DB (or rediss://, unix://), "
        "file:///absolute/folder or locmem://, or leave it unset for a folder under "
        "PEDIGREE_DATA_DIR."
    )
