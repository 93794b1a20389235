"""The SoundFlow daily plan: the repo's plan loads, and every kind of mistake is refused with a message saying where.
Plus the renderer honouring the plan (length, layers, ambience) without the stack."""

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
from temporalio.testing import ActivityEnvironment

from activities.catalog import CatalogActivities
from activities.soundflow import catalog as catalogs
from activities.soundflow.plan import DEFAULT_PLAN, PlanError, load_plan, parse_plan
from activities.soundflow.render import render_track
from api.services import catalog as catalog_service
from contracts.catalog import CATEGORIES, RenderTrackInput
from smol.settings import Settings
from smol.store import FileStore
from tests.audio import estimate_bpm


def plan_text(**changes) -> str:
    """The repo's plan as YAML, with `changes` applied to the first track (None deletes a field)."""
    data = yaml.safe_load(DEFAULT_PLAN.read_text())
    for name, value in changes.items():
        if value is None:
            del data["tracks"][0][name]
        else:
            data["tracks"][0][name] = value
    return yaml.safe_dump(data)


def test_the_repo_plan_has_one_track_per_category_with_weekday_genres():
    plan = load_plan()
    monday, tuesday = plan.day("2026-11-23"), plan.day("2026-11-24")
    assert [t.category for t in monday] == list(CATEGORIES)
    assert {t.category: t.genre for t in monday}["Deep Work"] == "deep"
    assert {t.category: t.genre for t in tuesday}["Deep Work"] == "house"
    assert {t.category: t.genre for t in tuesday}["Study"] == "chillout"
    assert {t.category: t.genre for t in monday}["Flow State"] == "trance"
    assert all(t.seconds == 180 for t in monday)
    assert all(t.seconds == 7 for t in plan.day("2026-11-23", 7))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"genres": ["polka"]}, "tracks.0.genres: unknown genre(s) polka"),
        ({"bpm": 500}, "tracks.0.bpm"),
        ({"key": "H#"}, "tracks.0.key"),
        ({"layers": {"drums": 101, "bass": 1, "music": 1, "pad": 1}}, "tracks.0.layers.drums"),
        ({"layers": {"drums": 1, "bass": 1}}, "tracks.0.layers: must give exactly the layers drums, bass, music, pad"),
        ({"energy": [80, 20]}, "tracks.0.energy: must be [lowest, highest]"),
        ({"ambience": [10]}, "tracks.0.ambience"),
        ({"id": "Deep Work!"}, "tracks.0.id"),
        ({"slug": "deepwork"}, "siteCategory 'Deep Work' with slug 'deepwork' is not one of"),
        ({"goalTags": None}, "tracks.0.goalTags: Field required"),
        ({"colour": "blue"}, "tracks.0.colour: Extra inputs are not permitted"),
        ({"bpm": "fast"}, "tracks.0.bpm"),
    ],
)
def test_mistakes_are_refused_saying_where(changes, message):
    with pytest.raises(PlanError) as caught:
        parse_plan(plan_text(**changes), "plan.yaml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("plan.yaml: ")


def test_missing_category_duplicate_ids_and_broken_files():
    data = yaml.safe_load(DEFAULT_PLAN.read_text())
    without_nature = {**data, "tracks": [t for t in data["tracks"] if t["slug"] != "nature"]}
    with pytest.raises(PlanError, match="needs exactly one track per category"):
        parse_plan(yaml.safe_dump(without_nature))
    same_ids = {**data, "tracks": [{**t, "id": "same"} for t in data["tracks"]]}
    with pytest.raises(PlanError, match="track ids must be unique"):
        parse_plan(yaml.safe_dump(same_ids))
    with pytest.raises(PlanError, match="not valid YAML"):
        parse_plan("tracks: [", "p.yaml")
    with pytest.raises(PlanError, match="must be a mapping"):
        parse_plan("- 1\n- 2\n")
    with pytest.raises(PlanError, match="cannot be read"):
        load_plan("/nonexistent/plan.yaml")
    with pytest.raises(PlanError, match="seconds"):
        parse_plan(textwrap.dedent(yaml.safe_dump({**data, "seconds": 1})))


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def test_the_renderer_honours_length_layers_and_ambience():
    spec = load_plan().day("2026-11-23", 12)[0]
    samples = render_track(spec, seed=1)
    assert samples.shape == (12 * 44100, 2) and samples.dtype == np.float32
    assert np.max(np.abs(samples)) <= 0.9
    silent = render_track(_with(spec, layers={"drums": 0, "bass": 0, "music": 0, "pad": 0}, ambience_min=0,
                                    ambience_max=0), seed=1)  # fmt: skip
    assert _rms(silent) < 1e-6
    only_ambience = render_track(_with(spec, layers={"drums": 0, "bass": 0, "music": 0, "pad": 0}, ambience_min=80,
                                           ambience_max=90), seed=1)  # fmt: skip
    assert _rms(only_ambience) > 0.01
    # the tempo is the plan's
    for bpm in (90, 124, 150):
        drums = render_track(_with(spec, bpm=bpm, seconds=20, ambience_min=0, ambience_max=0,
                                   layers={"drums": 100, "bass": 0, "music": 0, "pad": 0}), seed=1)  # fmt: skip
        assert abs(estimate_bpm(drums.mean(axis=1), 44100, low=80) - bpm) < 2


def _with(spec, **changes):
    import dataclasses

    return dataclasses.replace(spec, **changes)


async def test_a_track_whose_record_was_lost_is_not_rendered_again(tmp_path):
    """A worker killed between the audio and its record: the retry writes the record and keeps the audio (the
    track is new to the catalog then, as in a run that was not interrupted)."""
    spec = load_plan().day("2031-08-08", 3)[0]
    activities = CatalogActivities(FileStore(tmp_path), Settings(catalog_render_processes=1))
    try:
        made = await ActivityEnvironment().run(activities.render_track, RenderTrackInput("2031-08-08", spec))
        assert made.rendered
        audio, record = tmp_path / made.object_key, tmp_path / catalogs.record_key(made.entry_id)
        inode, written = audio.stat().st_ino, json.loads(record.read_text())
        record.unlink()
        again = await ActivityEnvironment().run(activities.render_track, RenderTrackInput("2031-08-08", spec))
    finally:
        activities.close()
    assert again.rendered and again.object_key == made.object_key
    assert audio.stat().st_ino == inode
    assert json.loads(record.read_text()) == written


async def test_serving_a_catalog_under_many_host_names_keeps_one_rendering(tmp_path):
    """The base of free tracks' urls follows the Host header (without SMOL_PUBLIC_URL): a client sending a new host
    each time must not grow the API's memory."""
    store = FileStore(tmp_path)
    entry = {"id": "free-2031-01-01-a", "tier": "free", "url": "/catalog/audio/free/x.mp3"}
    await store.put(catalog_service.ALL, json.dumps([entry]).encode(), "application/json")
    catalog_service._served.clear()
    for n in range(50):
        served, _ = await catalog_service.served_catalog(store, catalog_service.ALL, f"http://host{n}.example")
        assert json.loads(served)[0]["url"] == f"http://host{n}.example/catalog/audio/free/x.mp3"
    assert len(catalog_service._served) == 1


def test_render_processes_exit_when_their_worker_is_killed(tmp_path):
    """A worker killed outright (SIGKILL) leaves no render processes behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import os, time\n"
        "from activities.catalog import CatalogActivities\n"
        "from smol.settings import Settings\n"
        "from smol.store import FileStore\n"
        f"activities = CatalogActivities(FileStore({str(tmp_path)!r}), Settings(catalog_render_processes=2))\n"
        "activities._processes.submit(int).result()\n"
        "print(' '.join(str(p) for p in activities._processes._processes), flush=True)\n"
        "time.sleep(60)\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
    children = [int(pid) for pid in worker.stdout.readline().split()]
    assert len(children) == 2
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    deadline = time.monotonic() + 10
    alive = children
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [pid for pid in children if _running(pid)]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)  # (do not leave them behind when the test fails)
    assert not alive, f"render processes {alive} outlived their worker"


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
