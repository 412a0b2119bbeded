from tests.faults.fixtures import broker_down, receiver  # noqa: F401 (fixtures)
