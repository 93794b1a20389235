"""CPU-heavy work (synthesis, MP3 encoding, audio analysis) runs on one thread per core. Its numpy and LAME parts
release the GIL, so the cores are used in parallel; more threads than cores would not finish any sooner, they would
only hold more songs in memory at once."""

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
_threads = ThreadPoolExecutor(max_workers=CORES, thread_name_prefix="cpu")


async def on_cpu(fn, *args):
    """fn(*args) on a CPU thread; waits in line while every core is busy (a cancelled wait never starts it)."""
    return await asyncio.get_running_loop().run_in_executor(_threads, fn, *args)
