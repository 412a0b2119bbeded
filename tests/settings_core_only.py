"""The core alone: `registry` with Django's and DRF's apps, and none of lineage, licensing,
evaluators or demo. Used by tests/core_only, which tests/registry/test_core_only.py runs in a
process of its own (settings and the app registry are per process)."""

from config.settings import *  # noqa: F403
from config.settings import CELERY_BEAT_SCHEDULE, INSTALLED_APPS, SPECTACULAR_SETTINGS

OTHER_APPS = {"lineage", "licensing", "evaluators", "demo"}


def _core(dotted: str) -> bool:
    return dotted.split(".")[0] not in OTHER_APPS


INSTALLED_APPS = [app for app in INSTALLED_APPS if _core(app)]
# Settings that name the other apps' code go with them.
SPECTACULAR_SETTINGS = {
    **SPECTACULAR_SETTINGS,
    "ENUM_NAME_OVERRIDES": {
        name: path
        for name, path in SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].items()
        if _core(path)
    },
}
CELERY_BEAT_SCHEDULE = {
    name: entry for name, entry in CELERY_BEAT_SCHEDULE.items() if _core(entry["task"])
}
