"""The search index's activities: `analyze_smol` (what the archived songs sound like) and `index_smol` (the smol's
document, vector and words), for SmolWorkflow after `store_results` and for BackfillIndexWorkflow."""

import asyncio
from dataclasses import asdict

import asyncpg
import miniaudio
from temporalio import activity

from activities.analysis import audio_features, mood_and_theme, smol_vector
from activities.cpu import on_cpu
from contracts.search import (
    AnalyzeSmolInput,
    AnalyzeSmolResult,
    IndexSmolInput,
    IndexSmolResult,
    SongFeatures,
    UnindexedSmolsInput,
    UnindexedSmolsResult,
)
from contracts.steps import SongStatus
from smol import repo, search
from smol.errors import NotFound
from smol.store import ObjectStore


class IndexActivities:
    def __init__(self, pool: asyncpg.Pool, store: ObjectStore):
        self.pool, self.store = pool, store

    @activity.defn
    async def analyze_smol(self, data: AnalyzeSmolInput) -> AnalyzeSmolResult:
        songs = [song for song in await repo.songs_of(self.pool, data.smol_id)
                 if song["object_key"] is not None and song["status"] >= SongStatus.COMPLETE]  # fmt: skip
        result = AnalyzeSmolResult()
        # both songs at once: decoding and the FFTs run outside the GIL, so two cores halve the wait
        for song, features in zip(songs, await asyncio.gather(*map(self._features, songs)), strict=True):
            if features == "undecodable":
                result.undecodable.append(song["music_id"])
            elif features is not None:  # (None: the smol was deleted meanwhile; index_smol will find no row)
                result.songs.append(SongFeatures(music_id=song["music_id"], **features))
        return result

    async def _features(self, song) -> dict | str | None:
        try:
            mp3 = await self.store.get(song["object_key"])
            return await on_cpu(audio_features, mp3)
        except NotFound:
            return None
        except miniaudio.DecodeError:
            return "undecodable"

    @activity.defn
    async def index_smol(self, data: IndexSmolInput) -> IndexSmolResult:
        text = await search.smol_text(self.pool, data.smol_id)
        if text is None:
            return IndexSmolResult(indexed=False)
        songs = [asdict(song) for song in data.songs]
        mood, theme = mood_and_theme(text["style"], text["lyrics"])
        vector = smol_vector(songs, text["style"], " ".join([text["title"], text["lyrics"], text["description"]]))
        features = {s["music_id"]: {k: v for k, v in s.items() if k != "music_id"} for s in songs}
        indexed = await search.save_index(self.pool, data.smol_id, **text, mood=mood, theme=theme, vector=vector,
                                          features=features)  # fmt: skip
        return IndexSmolResult(indexed=indexed)

    @activity.defn
    async def unindexed_smols(self, data: UnindexedSmolsInput) -> UnindexedSmolsResult:
        return UnindexedSmolsResult(smol_ids=await search.unindexed(self.pool, data.after, data.limit, data.every))

    def all(self) -> list:
        return [self.analyze_smol, self.index_smol, self.unindexed_smols]
