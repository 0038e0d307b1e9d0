from lambdad.events.backoff import doubling


def test_doubling_starts_at_first_and_doubles_with_each_attempt() -> None:
    assert [doubling(attempt, 0.5, 100) for attempt in (1, 2, 3, 4)] == [0.5, 1, 2, 4]


def test_doubling_never_waits_longer_than_longest() -> None:
    assert [doubling(attempt, 1, 5) for attempt in (3, 4, 10, 60)] == [4, 5, 5, 5]


def test_doubling_treats_attempt_zero_as_the_first() -> None:
    assert doubling(0, 0.2, 10) == doubling(1, 0.2, 10) == 0.2
