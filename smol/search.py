"""Search and discovery over Postgres: full text (tsvector, weights A–D), typo tolerance (symmetric delete),
"more like this" (pgvector, cosine), trending, artists, stats, tags and one creator's smols. Every query that
returns smols applies the one visibility rule (`repo.visible_to`) at query time."""

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from smol import repo, steps
from smol.db import SESSION
from smol.errors import Conflict, InvalidInput, NotFound
from smol.repo import visible_to
from smol.validation import storable

MAX_QUERY = 200
RANK_WEIGHTS = "'{0.1, 0.2, 0.4, 1.0}'"  # D description+prompt, C lyrics, B style tags, A title
# the fields a result may have matched: name, weight, where those words are
FIELDS = (("title", "a", "d.head"), ("style", "b", "d.head"), ("lyrics", "c", "b.whole"),
          ("description", "d", "b.whole"))
TYPO_SHARE = 0.5  # a match through a corrected word counts half as much as the word itself
BODY_SAMPLE = 500  # matches outside title and style tags ranked per query (see `_search_documents`)
HEAD_SAMPLE = 2000  # the newest matches in title and style tags ranked per query
SAMPLE = 100  # matches of a query's rarest word read (best first) to rank a query of several words
COMPLETIONS = 16  # the most common lexemes a word being typed may complete to
POSTINGS_SLOTS = 2  # queries of more words are served by the GIN indexes: each word more cost the postings more
# (100,000 smols, common words, medians: 2 words 9.6 vs 14.4 ms, 3 words 22.1 vs 10.9, 8 words 476 vs 13.6; printed
# by bench/search.py)
CANDIDATES = 100  # the best matches of each kind checked for visibility before the query falls back to all
REFINE_SHARE = 3.0  # how much a `refine` text match adds to a cosine similarity
PERIODS = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30), "all": None}
_PLAIN = re.compile(r"[^\W_]+")  # letters and digits: safe inside a to_tsquery expression
_LEXICON = re.compile(r"[a-z]{4,24}")  # words typos are corrected to (shorter ones: too many near neighbours)

# The columns a result carries (api/routers/search.py shapes them): list fields, owner, counts, style, mood, theme.
RESULT_COLUMNS = (
    f"{repo.LIST_COLUMNS}, coalesce((SELECT min(u.username) FROM users u WHERE u.address = s.address), '') "
    "AS username, d.style, d.mood, d.theme"
)


def typo_variants(word: str) -> list[str]:
    """The word and each way of deleting one letter: two words within one edit share a variant."""
    return list(dict.fromkeys([word] + [word[:i] + word[i + 1 :] for i in range(len(word))]))


def edit_distance(a: str, b: str) -> int:
    """Damerau–Levenshtein distance (optimal string alignment)."""
    previous, current = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        before, previous, current = previous, current, [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], before[j - 2] + 1)
    return current[-1]


def lexicon_words(text: str) -> set[str]:
    return set(_LEXICON.findall(text.lower()))


# ---- writing the index (called by activities/indexing.py) ----


async def save_index(pool: asyncpg.Pool, smol_id: str, *, title: str, style: list[str], lyrics: str, description: str,
                     mood: str | None, theme: str | None, vector: list[float], features: dict) -> bool:  # fmt: skip
    """Write the smol's words (head and whole document), vector and typo words in one transaction; False if it has
    no row (not stored yet, or deleted: nothing is written, so a late index step cannot bring a deleted smol back)."""
    style = [t.strip().lower() for t in style if t.strip()]
    words = lexicon_words(" ".join([title, " ".join(style), lyrics, description]))
    variants = [(variant, word) for word in sorted(words) for variant in typo_variants(word)]
    async with pool.acquire() as conn, conn.transaction():
        # (a share lock: a change of visibility waits, so the counts of listed smols stay exact; schema/015)
        listed = await conn.fetchval("SELECT public AND safe FROM smols WHERE id = $1 FOR SHARE", smol_id)
        if listed is None:
            return False
        await conn.execute(
            "INSERT INTO smol_search (smol_id, head, created_at, style, mood, theme) SELECT $1, "
            "setweight(to_tsvector('english', $2), 'A') || setweight(to_tsvector('english', $3), 'B'), created_at, "
            "$4, $5, $6 FROM smols WHERE id = $1 ON CONFLICT (smol_id) DO UPDATE SET head = EXCLUDED.head, "
            "style = EXCLUDED.style, mood = EXCLUDED.mood, theme = EXCLUDED.theme, indexed_at = now()",
            smol_id, title, " ".join(style), style, mood, theme,
        )  # fmt: skip
        await conn.execute(  # (the head just written, then the other fields: schema/014)
            "INSERT INTO smol_bodies (smol_id, whole) SELECT $1, d.head || "
            "setweight(to_tsvector('english', $2), 'C') || setweight(to_tsvector('english', $3), 'D') "
            "FROM smol_search d WHERE d.smol_id = $1 ON CONFLICT (smol_id) DO UPDATE SET whole = EXCLUDED.whole",
            smol_id, lyrics, description,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO smol_vectors (smol_id, embedding, features) VALUES ($1, $2::text::vector, $3) "
            "ON CONFLICT (smol_id) DO UPDATE SET embedding = EXCLUDED.embedding, features = EXCLUDED.features",
            smol_id, json.dumps(vector), features,
        )  # fmt: skip
        await conn.executemany(
            "INSERT INTO search_words (variant, word) VALUES ($1, $2) ON CONFLICT DO NOTHING", variants
        )
        await _save_postings(conn, smol_id, listed)
    return True


async def _save_postings(conn: asyncpg.Connection, smol_id: str, listed: bool) -> None:
    """The smol's lexemes with their impact (schema/013), and, if it is `listed` (anyone may see it), the change in
    how many such smols hold each lexeme (schema/015; a lexeme new to the index gets a counter either way), counted in
    one statement in lexeme order (so concurrent index steps lock counters in the same order: no deadlock)."""
    before = await conn.fetch("DELETE FROM search_postings WHERE smol_id = $1 RETURNING lexeme", smol_id)
    after = await conn.fetch(
        "INSERT INTO search_postings (smol_id, lexeme, impact, created_at) "
        "SELECT d.smol_id, u.lexeme, search_impact(u.weights), d.created_at FROM smol_search d "
        "JOIN smol_bodies b ON b.smol_id = d.smol_id, unnest(b.whole) AS u WHERE d.smol_id = $1 "
        "RETURNING lexeme",
        smol_id,
    )
    old, new = {row["lexeme"] for row in before}, {row["lexeme"] for row in after}
    change = sorted([(lexeme, int(listed)) for lexeme in new - old] + [(lexeme, -1) for lexeme in old - new if listed])
    if change:
        await conn.execute(
            "INSERT INTO search_lexemes (lexeme, smols) SELECT * FROM unnest($1::text[], $2::int[]) AS c(lexeme, n) "
            'ORDER BY lexeme COLLATE "C" '
            "ON CONFLICT (lexeme) DO UPDATE SET smols = search_lexemes.smols + EXCLUDED.smols",
            [lexeme for lexeme, _ in change], [n for _, n in change],
        )  # fmt: skip


async def smol_text(pool: asyncpg.Pool, smol_id: str) -> dict | None:
    """What the index reads about a smol: its row's title, and the steps' lyrics, style, description and prompt."""
    row = await pool.fetchrow("SELECT title FROM smols WHERE id = $1", smol_id)
    if row is None:
        return None
    saved = await steps.load(pool, smol_id)
    lyrics, prompt = saved.lyrics, saved.payload.prompt if saved.payload else ""
    return {
        "title": row["title"],
        "style": [str(t) for t in lyrics.style or []] if lyrics else [],
        "lyrics": re.sub(r"\[[^\]]*\]", " ", lyrics.lyrics or "") if lyrics else "",  # without [Verse], [Chorus]
        "description": f"{saved.description or ''} {prompt or ''}",
    }


async def unindexed(pool: asyncpg.Pool, after: str, limit: int, every: bool = False) -> list[str]:
    """Ids of smols without a vector (or all, `every`), in id order after `after`: what a backfill indexes."""
    missing = "" if every else "AND NOT EXISTS (SELECT 1 FROM smol_vectors v WHERE v.smol_id = s.id)"
    rows = await pool.fetch(f"SELECT s.id FROM smols s WHERE s.id > $1 {missing} ORDER BY s.id LIMIT $2", after, limit)
    return [row["id"] for row in rows]


# ---- full-text search ----


# Blank as the OpenAPI document's pattern means it (JSON Schema's `\s`), so a query the document allows is searched
# (a control character alone finds nothing) rather than refused.
BLANK = " \t\n\v\f\r\u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff" + "".join(map(chr, range(0x2000, 0x200B)))


def _checked(q: str | None) -> str:
    q = (q or "").replace("\x00", " ")  # (a NUL is no search text, and Postgres text cannot hold one)
    if not q.strip(BLANK):
        raise InvalidInput("q must not be empty")
    q = q.strip()
    if len(q) > MAX_QUERY:
        raise InvalidInput(f"q must be at most {MAX_QUERY} characters")
    return q


def _prefix_term(q: str) -> tuple[str, str] | None:
    """(the query before the last word, that word in lower case) while the user is still typing it."""
    match = re.search(r"([^\W_]{2,})$", q)  # (a query ending in a space ends with a whole word)
    if match is None or q[: match.start()].rstrip().endswith('"') or q[: match.start()].endswith("-"):
        return None
    return q[: match.start()], match.group(1).lower()


def _seen(stems: str, viewer: str, lexeme: str | None = None) -> str:
    """SQL: a smol the viewer may see holds one of the lexemes `stems` (or the one `lexeme`: as `= ANY(ARRAY[x])`,
    Postgres may plan it as a scan of every posting). (OFFSET 0 keeps it a subquery that stops at the first such
    smol: as a join, Postgres may first hash every smol holding a common word.)"""
    held = f"p.lexeme = {lexeme}" if lexeme else f"p.lexeme = ANY({stems})"
    return (f"EXISTS (SELECT 1 FROM search_postings p JOIN smols s ON s.id = p.smol_id "
            f"WHERE {held} AND {visible_to(viewer)} OFFSET 0)")  # fmt: skip


async def _corrections(conn: asyncpg.Connection, q: str, unknown: list[str], viewer: str | None) -> str | None:
    """`q` with each `unknown` word (one no smol the viewer may see holds) replaced by the nearest word one edit away
    that such a smol holds, or None. `search_words` holds the words of every smol ever indexed, so it only proposes
    candidates: whether a word counts as known is decided over visible smols alone (otherwise whether a query is
    corrected would tell which words other people's private smols contain)."""
    variants = sorted({v for w in unknown for v in typo_variants(w)})
    rows = await conn.fetch(  # the candidates whose stem a smol the viewer may see holds
        f"""SELECT c.word FROM (SELECT DISTINCT word FROM search_words WHERE variant = ANY($1::text[])) AS c,
                   LATERAL tsvector_to_array(to_tsvector('english', c.word)) AS stems
            WHERE cardinality(stems) > 0 AND {_seen("stems", "$2")}""",
        variants, viewer,
    )  # fmt: skip
    known = {row["word"] for row in rows}
    corrected, changed = q.lower(), False
    for word in unknown:
        near = sorted((edit_distance(word, k), abs(len(k) - len(word)), k) for k in known)
        near = [k for d, _, k in near if d == 1]
        if near:
            corrected, changed = re.sub(rf"\b{word}\b", near[0], corrected), True
    return corrected if changed else None


async def search(pool: asyncpg.Pool, q: str | None, viewer: str | None, limit: int,
                 instrumental: bool | None = None) -> list[asyncpg.Record]:  # fmt: skip
    """Smols matching `q` best first: stemmed words (websearch syntax: "quotes", or, -not), the last word as a
    prefix while typing, and unknown words corrected to an indexed word one edit away (ranked lower)."""
    typed = _prefix_term((q or "").replace("\x00", " ").lstrip())
    q = _checked(q)
    async with pool.acquire() as conn:  # one connection for the few statements of a search
        # The statements of a search are planned once per connection, not on every call (planning took half a
        # search's time on common words), except those of several words (below); reset when the connection goes back.
        if not conn.plans_once:  # (a pool of its own starts so: smol.db.open_pool)
            await conn.set_session("plan_cache_mode", "force_generic_plan")
        words = await _words(conn, q, typed, viewer)
        corrected = await _corrections(conn, q, words.unknown, viewer) if words.unknown else None
        if corrected is not None:
            words = await _words(conn, q, typed, viewer, corrected)
        # phrases, "or", "-not", and more words than the postings serve well: over the GIN indexes, planned per call
        # (what they give varies)
        if words.slots is None or len(words.slots) > POSTINGS_SLOTS:
            await conn.set_session("plan_cache_mode", "force_custom_plan")
            return await _search_documents(conn, q, typed, corrected, viewer, limit, instrumental)
        return await _search_postings(conn, words, viewer, limit, instrumental) if words.slots else []


_QUOTED = re.compile(r"'((?:[^'\\]|'')*)'")


def _lexemes(tsquery: str | None) -> list[str] | None:
    """The lexemes of a tsquery made only of lexemes joined by & (what plain words give), else None."""
    if tsquery is None or tsquery == "":
        return None if tsquery is None else []
    matches = [_QUOTED.fullmatch(part) for part in tsquery.split(" & ")]
    return None if None in matches else [m.group(1).replace("''", "'") for m in matches]


@dataclass
class Words:
    """What a plain query asks for. `slots`: per word, the lexemes that satisfy it and what a match through each is
    worth (the word 1, its typo correction TYPO_SHARE, the most common completions of a word being typed that a smol
    the viewer may see holds 1); a smol matches when it holds one lexeme of every slot (None: the query has phrases,
    "or" or "-not"). `held`: how many smols anyone may see hold each slot; `indexed`: how many smols are indexed (the
    planner's estimate). `unknown`: the query's words of 4+ letters no smol the viewer may see holds."""

    slots: list[dict[str, float]] | None
    held: list[int]
    indexed: float
    unknown: list[str]


async def _words(conn: asyncpg.Connection, q: str, typed: tuple[str, str] | None, viewer: str | None,
                 corrected: str | None = None) -> Words:  # fmt: skip
    """The query's Words; with `corrected`, typo corrections join the slots (and `unknown` is not looked for)."""
    asked = [] if corrected else [w for w in dict.fromkeys(_LEXICON.findall(q.lower())) if len(w) <= 24]
    # Completions: the commonest words held by smols anyone may see (counted so, schema/015; words of hidden smols
    # alone are neither offered nor even read: a partial index leaves them out), each checked once more against the
    # rule, in the collation of the postings' index (compared in "C", the index could not serve). The prefix is a
    # range of the index, with bounds a plan made once can use (LIKE $4 could not: every word was read).
    seen_completion = _seen("", "$7", lexeme='c.lexeme COLLATE "default"')
    row = await conn.fetchrow(
        "SELECT websearch_to_tsquery('english', $1)::text AS whole, websearch_to_tsquery('english', $2)::text "
        "AS corrected, websearch_to_tsquery('english', $3)::text AS before, (SELECT jsonb_object_agg(lexeme, smols) "
        "FROM (SELECT lexeme, smols FROM search_lexemes WHERE lexeme >= $4 AND lexeme < $8 AND smols > 0 "
        f"ORDER BY smols DESC, lexeme LIMIT $5) AS c WHERE {seen_completion}) AS completions, "
        "(SELECT jsonb_object_agg(lexeme, smols) FROM search_lexemes WHERE lexeme = ANY("
        "tsvector_to_array(to_tsvector('english', concat_ws(' ', $1, $2))))) AS counts, "
        "(SELECT reltuples FROM pg_class WHERE oid = 'smol_search'::regclass) AS indexed, "
        "array(SELECT w FROM unnest($6::text[]) AS w, LATERAL tsvector_to_array(to_tsvector('english', w)) AS stems "
        f"WHERE cardinality(stems) > 0 AND NOT {_seen('stems', '$7')}) AS unknown",
        q, corrected, typed[0] if typed else None, typed[1] if typed else None, COMPLETIONS, asked, viewer,
        typed[1][:-1] + chr(ord(typed[1][-1]) + 1) if typed else None,  # (just past every word with the prefix)
    )  # fmt: skip
    whole, completions, unknown = _lexemes(row["whole"]), row["completions"] or {}, row["unknown"]
    if whole is None:
        return Words(None, [], 0, unknown)
    slots = [{lexeme: 1.0} for lexeme in whole]
    alternative = _lexemes(row["corrected"])
    if alternative is not None and len(alternative) == len(whole):
        for slot, lexeme in zip(slots, alternative, strict=True):
            slot.setdefault(lexeme, TYPO_SHARE)
    if typed is not None:
        before = _lexemes(row["before"])
        if before is None:
            return Words(None, [], 0, unknown)
        last = {lexeme: share for slot in slots[len(before) :] for lexeme, share in slot.items()}
        last |= {lexeme: 1.0 for lexeme in completions}  # (a typed word's completion is worth the word)
        slots = slots[: len(before)] + ([last] if last else [])
    slots = [slot for n, slot in enumerate(slots) if slot not in slots[:n]]  # ("sky sky sky" asks for one word)
    counts = (row["counts"] or {}) | completions
    held = [sum(counts.get(lexeme, 0) for lexeme in slot) for slot in slots]
    return Words(slots, held, max([row["indexed"] or 0, *held, 1]), unknown)  # (-1 or 0 before the first ANALYZE)


async def _search_postings(conn: asyncpg.Connection, words: Words, viewer: str | None, limit: int,
                           instrumental: bool | None) -> list[asyncpg.Record]:  # fmt: skip
    """The best smols holding every slot, from `search_postings`; a smol's score is the sum over slots of its best
    impact × share there.
    - One slot: the first `limit` visible entries under each of its lexemes (they are stored best first): exact.
    - Several slots, when that is cheaper than sampling (`_read_all_is_cheaper`): all their entries, joined, then
      checked for visibility best first until `limit` pass: exact.
    - Otherwise the entries of the slot held by the fewest smols are read best first, each kept if its smol holds
      the other slots too, until SAMPLE are kept (a common word is soon found along a rarer one); those are ranked."""
    slots, held = words.slots, words.held
    slot_of = [n for n, slot in enumerate(slots) for _ in slot]
    lexemes = [lexeme for slot in slots for lexeme in slot]
    shares = [share for slot in slots for share in slot.values()]
    args: list = [slot_of, lexemes, shares, viewer, limit]
    condition = visible_to("$4")
    if instrumental is not None:
        args.append(instrumental)
        condition += f" AND s.instrumental = ${len(args)}"
    if len(slots) == 1:
        found = _best_entries(condition, f"${len(args) + 1}", "", "")
        args.append(limit)
    else:
        if 0 in held and viewer is None:  # (counts are of smols anyone may see: a viewer may hold others)
            return []
        held = [max(1, n) for n in held]
        # planned for these words: how to join them depends on how many smols hold each (a plan made without them
        # was seen to cost 10×)
        await conn.set_session("plan_cache_mode", "force_custom_plan")
        if _read_all_is_cheaper(held, words.indexed):
            found = _joined_entries(slots, condition)
        else:
            others = """CROSS JOIN LATERAL (
                    SELECT coalesce(sum(best), 0) AS score, count(*) AS slots FROM (
                        SELECT max(o.impact * ot.share) AS best FROM terms ot
                        JOIN search_postings o ON o.smol_id = p.smol_id AND o.lexeme = ot.lexeme
                        WHERE ot.slot <> t.slot GROUP BY ot.slot) AS each_slot) AS o"""
            args += [held.index(min(held)), max(limit, SAMPLE // len(slots[held.index(min(held))]))]
            found = _best_entries(f"o.slots = {len(slots) - 1} AND {condition}", f"${len(args)}", others,
                                  f"AND t.slot = ${len(args) - 1}")  # fmt: skip
    matched = ", ".join(f"tsvector_to_array(ts_filter({column}, '{{{w}}}')) && $2::text[] AS in_{name}"
                        for name, w, column in FIELDS)  # fmt: skip
    query = f"""
        WITH terms AS (SELECT * FROM unnest($1::int[], $2::text[], $3::real[]) AS t(slot, lexeme, share)),
        found AS ({found}),
        best AS (SELECT * FROM found ORDER BY score DESC, created_at DESC, smol_id DESC LIMIT $5)
        SELECT {RESULT_COLUMNS}, h.score, {matched},
               array(SELECT t FROM unnest(d.style) t
                     WHERE tsvector_to_array(to_tsvector('english', t)) && $2::text[]) AS matched_style
        FROM best h JOIN smols s ON s.id = h.smol_id JOIN smol_search d ON d.smol_id = h.smol_id
        JOIN smol_bodies b ON b.smol_id = h.smol_id
        ORDER BY h.score DESC, s.created_at DESC, s.id DESC"""
    return await conn.fetch(query, *args)


def _read_all_is_cheaper(held: list[int], indexed: float) -> bool:
    """Whether joining every entry of the slots costs less than sampling the rarest slot: that reads entries until
    SAMPLE smols hold the other slots too, about SAMPLE / (the chance that a smol holds them) if words were
    independent, each entry checked with index lookups (~30× the cost of an entry read in a join)."""
    rarest = min(held)
    chance = math.prod(n / indexed for n in held) / (rarest / indexed)
    sampled = min(rarest, SAMPLE / max(chance, 1e-9))
    return sum(held) < 30 * sampled


def _joined_entries(slots: list[dict[str, float]], condition: str) -> str:
    """Smols holding every slot, from all the slots' entries joined, checked for `condition` best first."""
    entries = []
    for n, slot in enumerate(slots):
        each = (f"SELECT p.smol_id, p.impact * t.share AS best, p.created_at FROM terms t "
                f"JOIN search_postings p ON p.lexeme = t.lexeme WHERE t.slot = {n}")  # fmt: skip
        if len(slot) > 1:  # (a smol may hold several of the slot's lexemes: its best counts)
            each = f"SELECT smol_id, max(best) AS best, max(created_at) AS created_at FROM ({each}) e GROUP BY smol_id"
        entries.append(f"({each}) AS e{n}" + (f" ON e{n}.smol_id = e0.smol_id" if n else ""))
    score = " + ".join(f"e{n}.best" for n in range(len(slots)))
    return f"""
        SELECT h.smol_id, h.score, h.created_at FROM (
            SELECT e0.smol_id, {score} AS score, e0.created_at FROM {" JOIN ".join(entries)}
            ORDER BY score DESC, e0.created_at DESC, e0.smol_id DESC
        ) AS h JOIN smols s ON s.id = h.smol_id
        WHERE {condition}"""


def _best_entries(condition: str, per_lexeme: str, others: str, driver: str) -> str:
    """Up to `per_lexeme` entries under each lexeme (of the `driver` slot), best first, that meet `condition`."""
    plus = " + o.score" if others else ""
    return f"""
        SELECT c.smol_id, max(c.score) AS score, max(c.created_at) AS created_at
        FROM terms t CROSS JOIN LATERAL (
            SELECT p.smol_id, p.impact * t.share{plus} AS score, p.created_at
            FROM search_postings p {others}
            JOIN smols s ON s.id = p.smol_id
            WHERE p.lexeme = t.lexeme AND {condition}
            ORDER BY p.impact DESC, p.created_at DESC, p.smol_id DESC
            LIMIT {per_lexeme}
        ) AS c
        WHERE true {driver}
        GROUP BY c.smol_id"""


async def _search_documents(conn: asyncpg.Connection, q: str, typed: tuple[str, str] | None, corrected: str | None,
                            viewer: str | None, limit: int, instrumental: bool | None) -> list:  # fmt: skip
    """Queries with phrases, "or", "-not" or several words, over the GIN indexes of `smol_search.head` (title and
    style tags) and `smol_bodies.whole` (every field): a smol is found when its whole document matches the query (so
    "-word" excludes a smol with the word anywhere), and ranked first when its title and tags alone do."""
    args: list = [q, viewer, limit]
    ways = ["websearch_to_tsquery('english', $1)"]  # each way of matching is ranked on its own (an OR of them
    shares = [1.0]  # would average their ranks); the query expressions stay inline so the GIN indexes serve them
    if typed is not None:
        args += [typed[0], f"{typed[1]}:*"]
        ways.append("(websearch_to_tsquery('english', $4) && to_tsquery('simple', $5))")
        shares.append(1.0)
    if corrected is not None:
        args.append(corrected)
        ways.append(f"websearch_to_tsquery('english', ${len(args)})")
        shares.append(TYPO_SHARE)
    if instrumental is not None:
        args.append(instrumental)
    any_way = f"({' || '.join(ways)})"
    condition = f"{visible_to('$2')}" + (f" AND s.instrumental = ${len(args)}" if instrumental is not None else "")

    def score(column: str) -> str:
        ranks = [f"{share} * ts_rank({RANK_WEIGHTS}, {column}, {way})" for share, way in zip(shares, ways, strict=True)]
        return f"greatest({', '.join(ranks)})" if len(ranks) > 1 else ranks[0]

    matched = ", ".join(f"coalesce(ts_filter({column}, '{{{w}}}') @@ {any_way}, false) AS in_{name}"
                        for name, w, column in FIELDS)  # fmt: skip
    args += [max(CANDIDATES, 5 * limit), BODY_SAMPLE, HEAD_SAMPLE]
    cap, sample, newest = f"${len(args) - 2}", f"${len(args) - 1}", f"${len(args)}"
    # A common word matches thousands of smols, and ranking is what costs: matches in the title or style tags
    # (`head`) are ranked among the newest `newest` of them, matches anywhere (`whole`) among a sample. The best `cap`
    # of each are then checked against `smols` for visibility; if fewer than `limit` pass, the query runs again
    # without caps (cheap when few match, and needed when the caps held back smols the viewer may see).
    query = f"""
        WITH head AS (
            SELECT d.smol_id AS id, {score("d.head")} AS score, d.created_at
            FROM (SELECT d.smol_id, d.head, d.created_at FROM smol_search d WHERE d.head @@ {any_way}
                  ORDER BY d.created_at DESC LIMIT {newest}) d
            JOIN smol_bodies b ON b.smol_id = d.smol_id
            WHERE b.whole @@ {any_way}
            ORDER BY score DESC, d.created_at DESC, d.smol_id DESC LIMIT {cap}
        ), body AS (
            SELECT b.smol_id AS id, {score("b.whole")} AS score, d.created_at
            FROM (SELECT b.smol_id, b.whole FROM smol_bodies b WHERE b.whole @@ {any_way} LIMIT {sample}) b
            JOIN smol_search d ON d.smol_id = b.smol_id
            ORDER BY score DESC, d.created_at DESC, b.smol_id DESC LIMIT {cap}
        ), hits AS (
            SELECT DISTINCT ON (c.id) c.id, c.score, c.created_at
            FROM (SELECT * FROM head UNION ALL SELECT * FROM body) c JOIN smols s ON s.id = c.id
            WHERE {condition}
            ORDER BY c.id, c.score DESC
        ), best AS (
            SELECT * FROM hits ORDER BY score DESC, created_at DESC, id DESC LIMIT $3
        )
        SELECT {RESULT_COLUMNS}, h.score, {matched},
               array(SELECT t FROM unnest(d.style) t WHERE to_tsvector('english', t) @@ {any_way}) AS matched_style
        FROM best h JOIN smols s ON s.id = h.id JOIN smol_search d ON d.smol_id = h.id
        JOIN smol_bodies b ON b.smol_id = h.id
        ORDER BY h.score DESC, s.created_at DESC, s.id DESC"""
    rows = await conn.fetch(query, *args)
    if len(rows) < limit:
        rows = await conn.fetch(query, *args[:-3], None, None, None)  # LIMIT NULL: all of them
    return rows


def matched_fields(row) -> list[str]:
    return [name for name, _, _ in FIELDS if row[f"in_{name}"]]


# ---- more like this ----


async def similar(pool: asyncpg.Pool, smol_id: str, viewer: str | None, limit: int,
                  refine: str | None = None) -> list[asyncpg.Record]:  # fmt: skip
    """Smols nearest to this one's vector (cosine), without itself; `refine` words re-rank the nearest 100 by how
    well each matches them. NotFound if the viewer may not see the smol; Conflict while it is not indexed yet."""
    words = _PLAIN.findall((refine or "").lower())[:16]
    candidates = max(100, limit) if words else limit
    async with pool.acquire() as conn:
        # HNSW gives ef_search candidates before the visibility filter: ask for enough (connections start with 40,
        # smol.db.SESSION). (Planned per call: a generic plan, made without the vector, leaves the HNSW index unused
        # and costs 10×.)
        ef_search = min(1000, max(40, 2 * candidates))
        if str(ef_search) != SESSION["hnsw.ef_search"]:
            await conn.set_session("hnsw.ef_search", ef_search)
        return await _similar(conn, smol_id, viewer, limit, words, candidates)


async def _similar(conn: asyncpg.Connection, smol_id: str, viewer: str | None, limit: int, words: list[str],
                   candidates: int) -> list[asyncpg.Record]:  # fmt: skip
    embedding = await conn.fetchrow(
        f"SELECT v.embedding::text AS embedding, d.style FROM smols s LEFT JOIN smol_vectors v ON v.smol_id = s.id "
        f"LEFT JOIN smol_search d ON d.smol_id = s.id WHERE s.id = $1 AND {visible_to('$2')}",
        smol_id, viewer,
    )  # fmt: skip
    if embedding is None:
        raise NotFound("smol not found")
    if embedding["embedding"] is None:
        raise Conflict("this smol is not indexed yet; try again shortly")
    args = [embedding["embedding"], smol_id, viewer, candidates, embedding["style"] or [], limit]
    # Without `refine` no words are matched: the whole documents (`smol_bodies`) are not read at all.
    rerank, refined, bodies = "0", "NULL::tsquery", ""
    matched = ", ".join(f"false AS in_{name}" for name, _, _ in FIELDS)
    if words:
        args.append(" or ".join(words))  # any of the words (websearch syntax never fails to parse)
        refined = f"websearch_to_tsquery('english', ${len(args)})"
        rerank = f"{REFINE_SHARE} * ts_rank({RANK_WEIGHTS}, b.whole, n.refine)"
        matched = ", ".join(f"coalesce(ts_filter({column}, '{{{w}}}') @@ n.refine, false) AS in_{name}"
                            for name, w, column in FIELDS)  # fmt: skip
        bodies = "JOIN smol_bodies b ON b.smol_id = n.id"
    query = f"""
        WITH near AS (
            SELECT s.id, 1 - (v.embedding <=> $1::vector) AS similarity, {refined} AS refine
            FROM smol_vectors v JOIN smols s ON s.id = v.smol_id
            WHERE s.id <> $2 AND {visible_to("$3")}
            ORDER BY v.embedding <=> $1::vector
            LIMIT $4
        )
        SELECT {RESULT_COLUMNS}, n.similarity + {rerank} AS score, {matched},
               array(SELECT t FROM unnest(d.style) t WHERE t = ANY($5::text[])) AS matched_style
        FROM near n JOIN smols s ON s.id = n.id JOIN smol_search d ON d.smol_id = n.id
        {bodies}
        ORDER BY score DESC, s.id
        LIMIT $6"""
    return await conn.fetch(query, *args)


# ---- discovery ----


def since(period: str) -> datetime | None:
    """Start of the period in UTC (naive, as `likes.created_at` and `smol_counts.hour` are stored); None: all time."""
    length = PERIODS[period]
    return None if length is None else datetime.now(UTC).replace(tzinfo=None) - length


async def trending(pool: asyncpg.Pool, period: str, viewer: str | None, limit: int) -> list[asyncpg.Record]:
    """Smols by plays + views + 10 × likes within the period (all: their running totals), best first."""
    start = since(period)
    if start is None:
        counts = "SELECT id AS smol_id, plays, views FROM smols WHERE plays > 0 OR views > 0"
        liked = "SELECT id, count(*) AS n FROM likes GROUP BY id"
    else:
        counts = ("SELECT smol_id, sum(plays) AS plays, sum(views) AS views FROM smol_counts "
                  "WHERE hour >= date_trunc('hour', $3::timestamp) GROUP BY smol_id")  # fmt: skip
        liked = "SELECT id, count(*) AS n FROM likes WHERE created_at >= $3 GROUP BY id"
    query = f"""
        WITH c AS ({counts}), l AS ({liked})
        SELECT {repo.LIST_COLUMNS}, coalesce(c.plays, 0)::int AS period_plays,
               coalesce(c.views, 0)::int AS period_views, coalesce(l.n, 0)::int AS likes,
               coalesce(c.plays, 0) + coalesce(c.views, 0) + 10 * coalesce(l.n, 0) AS score
        FROM smols s LEFT JOIN c ON c.smol_id = s.id LEFT JOIN l ON l.id = s.id
        WHERE (c.smol_id IS NOT NULL OR l.id IS NOT NULL) AND {visible_to("$1")}
        ORDER BY score DESC, s.created_at DESC, s.id DESC
        LIMIT $2"""
    return await pool.fetch(query, viewer, limit, *([start] if start else []))


async def artists(pool: asyncpg.Pool, limit: int) -> list[asyncpg.Record]:
    """Creators of smols anyone may see, by the plays of those smols, then how many."""
    return await pool.fetch(
        f"SELECT s.address, coalesce((SELECT min(u.username) FROM users u WHERE u.address = s.address), '') "
        f"AS username, count(*)::int AS smols, sum(s.plays)::bigint AS plays FROM smols s WHERE {visible_to(None)} "
        f"GROUP BY s.address ORDER BY plays DESC, smols DESC, s.address LIMIT $1",
        limit,
    )


async def stats(pool: asyncpg.Pool) -> dict:
    """Site totals: every smol, and plays, likes and mints of the public ones only (activity on a private smol is its
    owner's business)."""
    row = await pool.fetchrow(
        f"SELECT count(*) AS smols, count(*) FILTER (WHERE {visible_to(None)}) AS public, "
        f"coalesce(sum(s.plays) FILTER (WHERE {visible_to(None)}), 0) AS plays, "
        f"count(*) FILTER (WHERE s.mint_token IS NOT NULL AND {visible_to(None)}) AS minted, "
        f"(SELECT count(*) FROM likes l JOIN smols s ON s.id = l.id WHERE {visible_to(None)}) AS likes, "
        "(SELECT count(*) FROM (SELECT address FROM smols UNION SELECT address FROM users) a) AS users "
        "FROM smols s"
    )
    return {key: int(row[key]) for key in ("smols", "public", "plays", "likes", "users", "minted")}


async def list_by_tag(pool: asyncpg.Pool, tag: str, viewer: str | None, limit: int, after=None) -> list[asyncpg.Record]:
    """Smols with this style tag (any case), newest first, paged like `GET /`."""
    if not storable(tag):
        return []  # no tag holds what Postgres cannot store
    source = "smols s JOIN smol_search d ON d.smol_id = s.id"
    condition = f"d.style @> ARRAY[lower($1)]::text[] AND {visible_to('$2')}"
    return await repo._page_of(pool, source, condition, [tag.strip(), viewer], limit, after)


async def list_by_creator(pool: asyncpg.Pool, address: str, limit: int, after=None,
                          viewer: str | None = None) -> list[asyncpg.Record]:  # fmt: skip
    """One creator's smols the viewer may see (anonymous: the public ones), newest first, paged like `GET /`."""
    return await repo._page_of(pool, "smols s", f"s.address = $1 AND {visible_to('$2')}", [address, viewer],
                               limit, after)  # fmt: skip
