"""Speed of the local song synthesizer, including MP3 encoding, in × realtime per core (CPU time, one thread).

.venv/bin/python bench/synth.py [--seconds 30] [--songs 6]
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from activities.providers.local.music import encode_mp3, plan, render  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--songs", type=int, default=6)
    args = parser.parse_args()
    styles = [["house"], ["lofi", "dreamy"], ["punk"], ["jazz"], ["synthwave"], ["ambient"]]
    render_cpu = encode_cpu = 0.0
    wall = time.perf_counter()
    for n in range(args.songs):
        arrangement = plan(styles[n % len(styles)], n)
        t0 = time.process_time()
        samples = render(arrangement, args.seconds, n % 2, n)
        t1 = time.process_time()
        encode_mp3(samples, title="bench", artist="bench", arrangement=arrangement, cover_png=None)
        render_cpu, encode_cpu = render_cpu + t1 - t0, encode_cpu + time.process_time() - t1
    wall = time.perf_counter() - wall
    audio = args.songs * args.seconds
    print(f"cores: {os.cpu_count()}, {args.songs} songs × {args.seconds}s = {audio}s of audio")
    print(f"  synthesis  {audio / render_cpu:6.1f}× realtime per core ({render_cpu:.2f}s CPU)")
    print(f"  mp3 encode {audio / encode_cpu:6.1f}× realtime per core ({encode_cpu:.2f}s CPU)")
    print(f"  together   {audio / (render_cpu + encode_cpu):6.1f}× realtime per core; wall {audio / wall:.1f}×")


if __name__ == "__main__":
    main()
