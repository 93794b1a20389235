"""`GET /?address=`: one creator's smols, paged like `GET /`, under the one visibility rule."""

from stellar_sdk import Keypair

from tests.support import OTHER, insert_smol


async def test_a_creators_page_shows_others_their_public_smols_and_the_creator_all(stack, http, pool):
    creator = Keypair.random().public_key
    made = {kind: (await insert_smol(pool, creator, kind))["id"] for kind in ("public", "private", "unsafe")}
    await insert_smol(pool, OTHER, "public")  # someone else's: never on this page

    def ids(response):
        assert response.status_code == 200, response.text
        return {smol["Id"] for smol in response.json()["smols"]}

    assert ids(await http.get("/", params={"address": creator})) == {made["public"]}
    assert ids(await http.get("/", params={"address": creator}, headers=stack.auth(OTHER))) == {made["public"]}
    mine = await http.get("/", params={"address": creator}, headers=stack.auth(creator))
    assert ids(mine) == set(made.values()) and "no-store" in mine.headers["Cache-Control"]
    assert ids(await http.get("/", params={"address": "GNOBODY"})) == set()


async def test_a_creators_page_is_paged_with_the_cursor(stack, http, pool):
    creator = Keypair.random().public_key
    made = {(await insert_smol(pool, creator, "public"))["id"] for _ in range(5)}
    first = (await http.get("/", params={"address": creator, "limit": 3})).json()
    cursor = first["pagination"]["nextCursor"]
    second = (await http.get("/", params={"address": creator, "limit": 3, "cursor": cursor})).json()
    seen = [s["Id"] for s in first["smols"] + second["smols"]]
    assert len(seen) == 5 and set(seen) == made and second["pagination"].get("nextCursor") is None
    assert (await http.get("/", params={"address": "x" * 101})).status_code == 422
