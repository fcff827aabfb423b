"""Sample learner code: async cache, check-then-act across an await, and a locked one."""

import asyncio


class RacyAsyncCache:
    def __init__(self) -> None:
        self.data: dict[str, int] = {}
        self.fetches = 0

    async def fetch(self, key: str) -> int:
        self.fetches += 1
        await asyncio.sleep(0)  # the backend round trip
        return len(key)

    async def get(self, key: str) -> int:
        if key not in self.data:
            value = await self.fetch(key)
            self.data[key] = value
        return self.data[key]

    async def login_then_get(self, key: str) -> int:
        await asyncio.sleep(0)  # a client that does one round trip first
        return await self.get(key)


class SafeAsyncCache(RacyAsyncCache):
    def __init__(self) -> None:
        super().__init__()
        self.lock = asyncio.Lock()

    async def get(self, key: str) -> int:
        async with self.lock:
            if key not in self.data:
                self.data[key] = await self.fetch(key)
            return self.data[key]
