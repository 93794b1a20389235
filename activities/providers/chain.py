"""An ordered fallback chain of providers of one kind.

Each provider gets a few quick attempts inside the activity; when they are used up, or it answers with a
non-retryable error, the next provider is asked. When every provider failed, the activity fails: retryably if any
failure was transient (Temporal then retries the whole chain with the step's policy), else for good.
"""

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from smol.errors import PaidCallLimit, ProviderError, ProvidersExhausted, ProvidersRefused, ProviderUnavailable
from workflows.policies import PROVIDER_RETRY_PAUSE

Recorder = Callable[[str], AbstractAsyncContextManager]


class Chain:
    def __init__(self, providers: list, attempts: int = 2, pause: float = PROVIDER_RETRY_PAUSE):
        if not providers:
            raise ValueError("a provider chain needs at least one provider")
        self.providers, self.attempts, self.pause = providers, attempts, pause

    @property
    def names(self) -> list[str]:
        return [provider.name for provider in self.providers]

    def named(self, name: str):
        for provider in self.providers:
            if provider.name == name:
                return provider
        raise ProviderUnavailable(f"provider {name!r} is not configured on this worker")

    def starting_with(self, name: str) -> "Chain":
        """The same chain with `name` asked first (a creator's choice), the others still behind it."""
        first = self.named(name)
        return Chain([first, *(p for p in self.providers if p is not first)], self.attempts, self.pause)

    async def call(self, method: str, *args, record: Recorder, **kwargs):
        """(result, provider name) from the first provider that answers. A provider whose paid calls reached their
        cap (the recorder refuses with PaidCallLimit) is not asked again; the next one (a free one) may be."""
        failures, transient, capped = [], False, False
        for provider in self.providers:
            for attempt in range(self.attempts):
                try:
                    async with record(provider.name):
                        return await getattr(provider, method)(*args, **kwargs), provider.name
                except ProviderError as exc:
                    failures.append(f"{provider.name}: {exc}")
                    capped = capped or isinstance(exc, PaidCallLimit)
                    if not exc.retryable:
                        break
                    transient = True
                    if attempt + 1 < self.attempts:
                        await asyncio.sleep(self.pause * 2**attempt)
        failure = ProvidersExhausted if transient else PaidCallLimit if capped else ProvidersRefused
        raise failure("every provider failed — " + "; ".join(failures))


def as_chain(provider_or_chain) -> Chain:
    return provider_or_chain if isinstance(provider_or_chain, Chain) else Chain([provider_or_chain])
