"""Bad requests to POST / get a clear 4xx and start no workflow."""

import asyncio
import time
import unicodedata

import jwt
import pytest

from smol.errors import InvalidInput
from smol.validation import check_playlist, check_shown_playlist, check_shown_text
from tests.support import JWT_SECRET, wait_for

LONG = "x" * 2281


async def _workflow_count(temporal) -> int:
    return (await temporal.count_workflows()).count


BAD_BODIES = [
    ({}, 422, "prompt"),
    ({"prompt": ""}, 422, "prompt"),
    ({"prompt": "   "}, 400, "prompt is required"),
    ({"prompt": LONG}, 422, "2280"),
    ({"prompt": "y" * 381, "instrumental": True}, 400, "380"),
    ({"prompt": None}, 422, "prompt"),
    ({"prompt": 42}, 422, "prompt"),
    ({"prompt": "ok", "public": "maybe"}, 422, "public"),
    ({"prompt": "ok", "playlist": "p" * 101}, 422, "playlist"),
    ({"prompt": "ok", "playlist": "road\u202etrip"}, 400, "visible characters"),
    ({"prompt": "ok\x00"}, 400, "NUL"),
    (["prompt"], 422, ""),
]


def _expired_token() -> str:
    return jwt.encode({"sub": "G", "exp": int(time.time()) - 5}, JWT_SECRET, algorithm="HS256")


BAD_AUTH = [
    {},
    {"Authorization": "Bearer nonsense"},
    {"Authorization": "Basic Zm9vOmJhcg=="},
    {"Authorization": "Bearer " + jwt.encode({"sub": "G", "exp": int(time.time()) + 60}, "x" * 40, algorithm="HS256")},
    {"Cookie": "smol_token=nonsense"},
]


async def test_bad_input_is_4xx_with_a_clear_message_and_starts_nothing(stack, http, temporal):
    await asyncio.sleep(1)  # let visibility settle from earlier tests
    before = await _workflow_count(temporal)
    headers = stack.auth("GINPUT")
    for body, status, words in BAD_BODIES:
        response = await http.post("/", json=body, headers=headers)
        assert response.status_code == status, (body, response.status_code, response.text)
        assert words in response.text, (body, response.text)
    malformed = await http.post(
        "/", content=b'{"prompt": "unterminated', headers={**headers, "content-type": "application/json"}
    )
    assert malformed.status_code == 422 and "json" in malformed.text.lower()
    for auth in BAD_AUTH + [{"Authorization": f"Bearer {_expired_token()}"}]:
        response = await http.post("/", json={"prompt": "fine"}, headers=auth)
        assert response.status_code == 401, (auth, response.text)

    # The one good request shows the count is live: it goes up by exactly one.
    ok = await http.post("/", json={"prompt": "y" * 380, "instrumental": True}, headers=headers)
    assert ok.status_code == 200
    deadline = time.monotonic() + 10
    while await _workflow_count(temporal) < before + 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)
    assert await _workflow_count(temporal) == before + 1


@pytest.mark.parametrize("length, instrumental", [(2280, False), (380, True)])
async def test_prompts_at_the_limit_are_accepted(stack, http, length, instrumental):
    response = await http.post(
        "/", json={"prompt": "z" * length, "instrumental": instrumental}, headers=stack.auth("GLIMIT")
    )
    assert response.status_code == 200 and len(response.text) == 64


# Names people write: an emoji family (zero-width joiners), Persian (a zero-width non-joiner), a no-break space,
# an ideographic space, and a code point newer than this Python's Unicode tables.
SHOWN_FINE = ["\U0001f469\u200d\U0001f469\u200d\U0001f467 trip", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0645",
              "caf\u00e9\u00a0noir", "\u6771\u4eac\u3000\u591c", "new \U0001fafa"]  # fmt: skip
SHOWN_REFUSED = ["\u202egnp.exe", "a \u2066b\u2069", "left\u200fright", "\x07bell", "line\u2028break", "a\nb"]


def test_text_shown_to_others_refuses_only_what_hides_or_reorders():
    assert unicodedata.category("\U0001fafa") == "Cn"  # (so the last of SHOWN_FINE tests what it says)
    for text in SHOWN_FINE:
        assert check_shown_text(text) == text and check_shown_playlist(text) == text
    for text in SHOWN_REFUSED:
        with pytest.raises(ValueError):
            check_shown_text(text)
        with pytest.raises(InvalidInput):
            check_shown_playlist(text)
    assert check_shown_text("two\n\tlines", lines=True) == "two\n\tlines"
    assert check_playlist("road\u202etrip") == "road\u202etrip"  # a run queued before the rule still saves its payload


async def test_names_in_any_script_are_accepted_where_they_are_shown(stack, http):
    headers = stack.auth("GSCRIPTS")
    for name in SHOWN_FINE:
        created = await http.post("/", json={"prompt": "a frog", "playlist": name, "title": name}, headers=headers)
        assert created.status_code == 200, (name, created.text)
        body = await wait_for(http, created.text, headers)
        assert body["kv_do"]["payload"]["playlist"] == name and body["d1"]["Title"] == name
        mixtape = await http.post("/mixtapes", json={"title": name, "desc": name, "smols": [created.text]},
                                  headers=headers)  # fmt: skip
        assert mixtape.status_code == 201, (name, mixtape.text)
        assert (await http.get(f"/mixtapes/{mixtape.json()['id']}")).json()["Title"] == name


async def test_cookie_token_is_accepted(stack, http):
    response = await http.post(
        "/", json={"prompt": "cookie"}, headers={"Cookie": f"smol_token={stack.token('GCOOKIE')}"}
    )
    assert response.status_code == 200
    body = await wait_for(http, response.text, until=lambda b: "payload" in b["kv_do"])
    assert body["kv_do"]["payload"]["address"] == "GCOOKIE"


async def test_a_creator_may_choose_the_song_model_and_its_parameters(stack, http):
    from tests.audio import decode_mp3

    body = {"prompt": "a short chosen song", "song_model": "local", "song_params": {"duration": 6}}
    created = await http.post("/", json=body, headers=stack.auth("GMODEL"))
    assert created.status_code == 200, created.text
    finished = await wait_for(http, created.text, stack.auth("GMODEL"))
    assert finished["kv_do"]["payload"]["song_model"] == "local"
    samples, rate = decode_mp3((await http.get(f"/song/{finished['d1']['Song_1']}.mp3")).content)
    assert abs(len(samples) / rate - 6) <= 0.5


@pytest.mark.parametrize(
    "extra, words",
    [
        ({"song_model": "suno"}, "song_model must be one of"),
        ({"song_params": {"duration": 1000}}, "duration"),
        ({"song_params": {"duration": 2}}, "duration"),
        ({"song_params": {"temperature": -1}}, "temperature"),
        ({"song_params": {"seed_of_doom": 1}}, "seed_of_doom"),
        ({"song_params": "loud"}, "song_params"),
    ],
)
async def test_invalid_model_choices_are_422(stack, http, extra, words):
    response = await http.post("/", json={"prompt": "x", **extra}, headers=stack.auth("GMODELBAD"))
    assert response.status_code == 422 and words in response.text, response.text
