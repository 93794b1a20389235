"""SoundFlow: the daily music catalog (plan, renderer, nature ambience)."""
