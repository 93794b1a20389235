"""The once-a-window memory behind plays and views (api/services/tallies.py), on its own."""

from types import SimpleNamespace

import pytest

from api.clients import client_of
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


def test_a_client_is_its_address_and_an_ipv6_one_its_64():
    def client(host):
        return client_of(SimpleNamespace(client=SimpleNamespace(host=host) if host is not None else None))

    assert client("203.0.113.7") == "203.0.113.7"
    assert client("2001:db8:1:2:aaaa::1") == client("2001:db8:1:2:ffff:1:2:3") == "2001:db8:1:2::/64"
    assert client("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert client("::ffff:203.0.113.7") == "203.0.113.7"  # (IPv4-mapped: the IPv4 client)
    assert client("fe80::1%eth0") == "fe80::/64"
    assert client("testclient") == "testclient" and client(None) == ""
