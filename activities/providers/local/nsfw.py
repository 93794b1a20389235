"""A word-list safety check in the shape of a moderation model's answer: `{safe, categories}`."""

from activities.providers.local.vocab import words
from contracts.smol import Nsfw

CATEGORIES = {
    "sexual": {"sex", "sexy", "porn", "nude", "naked", "nsfw", "xxx", "erotic", "fetish"},
    "violence": {"kill", "killing", "murder", "gore", "bloody", "stab", "shooting", "massacre", "torture"},
    "hate": {"nazi", "genocide", "slur", "supremacy"},
    "self-harm": {"suicide", "self-harm", "cutting"},
    "drugs": {"cocaine", "heroin", "meth", "fentanyl"},
    "weapons": {"bomb", "explosive", "grenade"},
}


def check_text(text: str) -> Nsfw:
    present = set(words(text))
    hits = [category for category, vocab in CATEGORIES.items() if present & vocab]
    return Nsfw(safe=not hits, categories=hits)
