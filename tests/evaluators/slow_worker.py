"""Imported into the real-worker tests' Celery workers only (`celery worker --include`): makes
the transformers-sequence-classification evaluator pause before each batch's progress report,
for `PEDIGREE_TEST_BATCH_DELAY` seconds, so a test can kill the worker in the middle of a run.
Nothing outside those test workers imports it."""

import os
import time

from evaluators.engine.names import SEQUENCE_CLASSIFICATION
from evaluators.engine.plugins import registry

DELAY = float(os.environ.get("PEDIGREE_TEST_BATCH_DELAY", "0"))
_REAL = registry.get_evaluator(SEQUENCE_CLASSIFICATION)


class SlowEvaluator:
    kind = SEQUENCE_CLASSIFICATION

    def predict(self, *, progress, **kwargs):
        def slow_progress(done: int, total: int) -> None:
            time.sleep(DELAY)
            if progress is not None:
                progress(done, total)

        return _REAL.predict(progress=slow_progress, **kwargs)


registry._EVALUATORS[SEQUENCE_CLASSIFICATION] = SlowEvaluator()
