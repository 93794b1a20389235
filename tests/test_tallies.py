"""The once-a-window memory behind plays and views (api/services/tallies.py), on its own."""

import pytest

from api.services import tallies


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setattr(tallies, "_counted", type(tallies._counted)())


def test_a_second_claim_in_the_window_is_refused_and_release_gives_it_back():
    assert tallies.claim("a", "smol", 600)
    assert not tallies.claim("a", "smol", 600)
    assert tallies.claim("b", "smol", 600) and tallies.claim("a", "other", 600)
    tallies.release("a", "smol")
    assert tallies.claim("a", "smol", 600)


def test_a_window_of_zero_counts_every_time():
    assert all(tallies.claim("a", "smol", 0) for _ in range(3))


def test_ended_windows_are_forgotten_oldest_first(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(tallies.time, "monotonic", lambda: now[0])
    tallies.claim("a", "old", 10)
    now[0] += 5
    tallies.claim("a", "newer", 10)
    now[0] += 6  # "old" has ended, "newer" has not
    assert tallies.claim("b", "x", 10)
    assert list(tallies._counted) == [("a", "newer"), ("b", "x")]
    assert not tallies.claim("a", "newer", 10)


def test_a_flood_of_listeners_keeps_at_most_the_limit(monkeypatch):
    monkeypatch.setattr(tallies, "MOST_KEPT", 100)
    for n in range(250):
        assert tallies.claim(f"listener-{n}", "smol", 600)
    assert len(tallies._counted) == 100
    assert not tallies.claim("listener-249", "smol", 600)  # the newest are the ones kept
    assert tallies.claim("listener-0", "smol", 600)
