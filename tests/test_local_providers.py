import io

import numpy as np
from PIL import Image

from activities.providers.local.describe import describe_png
from activities.providers.local.image import draw_png
from activities.providers.local.lyrics import write_lyrics
from activities.providers.local.music import plan, render
from activities.providers.local.nsfw import check_text
from tests.audio import estimate_bpm


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def test_image_is_64_pixel_art_and_deterministic():
    png = draw_png("a frog in the rain", 7)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (64, 64)
    assert draw_png("a frog in the rain", 7) == png
    assert len(image.convert("RGB").getcolors(4096)) <= 64  # a small palette, not a photo


def test_different_prompts_give_visibly_different_pictures():
    prompts = ["a frog in the rain", "fire dragon", "night sky over the city", "candy garden"]
    images = [_pixels(draw_png(p, 0)) for p in prompts]
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            differing = (np.abs(images[i] - images[j]).sum(axis=2) > 30).mean()
            assert differing > 0.3, (prompts[i], prompts[j], differing)


def test_description_names_colours_and_light_of_the_picture():
    night = describe_png("night sky", draw_png("night sky", 0))
    fire = describe_png("fire", draw_png("fire", 0))
    assert "night sky" in night and "light is" in night
    assert night != fire
    assert any(word in night for word in ("navy", "indigo", "purple", "charcoal", "black", "violet"))


def test_lyrics_have_sections_and_style_tags_from_the_prompt():
    lyrics = write_lyrics("sad jazz about a frog", "Blue fills the frame.", False, 1)
    assert "[Verse]" in lyrics.lyrics and "[Chorus]" in lyrics.lyrics
    assert "jazz" in lyrics.style and "melancholic" in lyrics.style
    assert lyrics.title
    instrumental = write_lyrics("sad jazz about a frog", "", True, 1)
    assert instrumental.lyrics == "" and len(instrumental.style) >= 2
    assert len(write_lyrics("zzz", "", False, 1).style) >= 2


def test_nsfw_check_reports_categories():
    assert check_text("a happy frog").safe
    verdict = check_text("a bloody murder with a bomb")
    assert not verdict.safe and set(verdict.categories) == {"violence", "weapons"}


def test_style_tags_choose_the_tempo_and_the_rendering_keeps_it():
    for tags, (low, high) in [(["house"], (120, 126)), (["punk"], (160, 180)), (["lofi", "dreamy"], (72, 88))]:
        arrangement = plan(tags, 3)
        assert low <= arrangement.bpm <= high
        samples = render(arrangement, 12, 0, 3)
        assert samples.shape == (12 * 44100, 2)
        bpm = estimate_bpm(samples.mean(axis=1), 44100, arrangement.bpm * 0.75, arrangement.bpm * 1.5)
        assert abs(bpm - arrangement.bpm) / arrangement.bpm < 0.02, (tags, bpm, arrangement.bpm)


def test_variants_differ():
    arrangement = plan(["synthwave"], 5)
    a, b = render(arrangement, 8, 0, 5), render(arrangement, 8, 1, 5)
    assert np.corrcoef(a[:, 0], b[:, 0])[0, 1] < 0.8
