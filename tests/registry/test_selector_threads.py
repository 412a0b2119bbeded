"""The visibility selectors build each user's queryset once per process and clone it per call;
threads of one web process (gunicorn's gthread workers) compile those clones at the same time.
A subquery shared between clones would be compiled by several threads at once, and Django's
compiler counts references on it while it compiles: the SQL must stay whole."""

import sys
import threading

import pytest

from registry.selectors import (
    dataset_versions_visible_to,
    datasets_visible_to,
    models_visible_to,
    versions_visible_to,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "visible",
    [models_visible_to, versions_visible_to, datasets_visible_to, dataset_versions_visible_to],
)
def test_threads_compiling_one_users_visible_rows_get_the_same_sql(visible, engineer):
    expected = str(visible(engineer).filter(pk=1).query)
    start = threading.Barrier(8)
    seen: set[str] = set()

    def compile_many() -> None:
        start.wait(10)
        for _ in range(100):
            seen.add(str(visible(engineer).filter(pk=1).query))

    threads = [threading.Thread(target=compile_many) for _ in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, inside the compiler too
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert seen == {expected}
