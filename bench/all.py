"""Every benchmark, one after another, and one table of what they measured: figure, floor (measured in the same run
where there is one), ratio, goal, met or not. Each script starts its own throwaway stack; their own output goes to
stderr as they run, the table to stdout (markdown, as in the README's Performance section).

    .venv/bin/python bench/all.py [--only catalog,media,pipeline,synth,scale,search] [--scale-smols 10000]

Needs wrk and nginx (Debian: apt-get install wrk nginx). The whole run takes about half an hour on 2 cores,
most of it the 10,000 smols of bench/scale.py.
"""

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass
class Row:
    what: str
    figure: str
    floor: str
    ratio: float | None
    goal: str
    met: bool


def run(script: str, *args: str) -> str:
    """The script's stdout, echoed to stderr as it comes."""
    command = [sys.executable, str(HERE / script), *args]
    print(f"$ {' '.join(command[1:])}", file=sys.stderr, flush=True)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=HERE.parent)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        print(line, end="", file=sys.stderr, flush=True)
    if proc.wait() != 0:
        raise SystemExit(f"{script} failed ({proc.returncode})")
    return "".join(lines)


def find(pattern: str, text: str) -> tuple[str, ...]:
    match = re.search(pattern, text)
    if match is None:
        raise SystemExit(f"not in the output: {pattern!r}")
    return match.groups()


WRK = r"p50\s+([\d.]+(?:us|ms|s))\s+p99\s+([\d.]+(?:us|ms|s))\s+([\d.]+) req/s"
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def ms(figure: str) -> float:
    """wrk's "813.00us", "41.05ms" or "1.20s" in milliseconds."""
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", figure).groups()
    return float(number) * UNITS[unit]


def catalog() -> list[Row]:
    out = run("catalog.py")
    api, signed = find(rf"GET /        API {WRK}", out), find(rf"\(signed in\)\s+{WRK}", out)
    uncached, detail = find(rf"\(signed in, made afresh\)\s+{WRK}", out), find(rf"GET /{{id}}    API {WRK}", out)
    floor, pages_floor, detail_floor = re.findall(rf"\n\s+SQL[^\n]* {WRK}", out)[:3]  # (in that order)
    rows = []
    for what, (_, p99, rps), base in (("`GET /`, 100,000 smols, 50 clients, anonymous", api, floor),
                                      ("`GET /`, same, signed in", signed, floor),
                                      ("`GET /`, same, signed in, made afresh (a page of its own)", uncached,
                                       pages_floor)):  # fmt: skip
        ratio = float(rps) / float(base[2])
        figure, floor_figure = f"{float(rps):,.0f} req/s, p99 {ms(p99):.0f} ms", f"SQL {float(base[2]):,.0f} req/s"
        rows.append(Row(what, figure, floor_figure, ratio, "≥ 0.5× the floor, p99 ≤ 50 ms",
                        ratio >= 0.5 and ms(p99) <= 50))  # fmt: skip
    ratio = float(detail[2]) / float(detail_floor[2])
    rows.append(Row("`GET /{id}`, same", f"{float(detail[2]):,.0f} req/s, p99 {ms(detail[1]):.0f} ms",
                    f"{float(detail_floor[2]):,.0f} req/s", ratio, "≥ 0.67×", ratio >= 0.67))  # fmt: skip
    return rows


def media() -> list[Row]:
    out = run("media.py")
    later, first = find(rf"production, later ranges\s+{WRK}", out), find(rf"production, first range\s+{WRK}", out)
    alone, api = find(rf"nginx alone\s+{WRK}", out), find(rf"API alone\s+{WRK}", out)
    ratio = float(later[2]) / float(alone[2])
    figure = (f"later ranges {float(later[2]):,.0f} req/s (a play's first range, through the API: "
              f"{float(first[2]):,.0f}; the API alone {float(api[2]):,.0f})")  # fmt: skip
    return [Row("64 KiB ranges of a public song, 50 connections, production path (api/nginx/smol.conf.template)",
                figure, f"nginx alone {float(alone[2]):,.0f} req/s", ratio, "≥ 0.5× nginx", ratio >= 0.5)]  # fmt: skip


def pipeline() -> list[Row]:
    out = run("pipeline.py", "--smols", "5", "--song-delay", "0", "--batch", "20")
    client = float(find(r"client\s+median\s+(\d+) ms", out)[0])
    visible = float(find(r"visible\s+median\s+(\d+) ms", out)[0])
    overhead = float(find(r"overhead\s+median\s+(\d+) ms", out)[0])
    to_visible = float(find(r"overhead to visible\s+median\s+(\d+) ms", out)[0])
    rate, indexed = (float(v) for v in find(r"= ([\d.]+) smols/min; .* = ([\d.]+) smols/min", out))
    rss = float(find(r"peak RSS: worker (\d+) MB", out)[0])
    return [
        Row("one smol end to end, no artificial song delay", f"{client:.0f} ms to the client ({visible:.0f} ms in the "
            f"run), orchestration {to_visible:.0f} ms of that, {overhead:.0f} ms of the whole run with indexing", "—",
            None, "≤ 800 ms, orchestration ≤ 150 ms", client <= 800 and overhead <= 150),
        Row("pipeline throughput, 2 × 30 s songs, 20 at once", f"{rate:.1f} smols/min playable, {indexed:.1f}/min "
            "with their indexing done", "—", None, "≥ 100 smols/min (indexing done)", indexed >= 100),
        Row("peak worker RSS, 20 at once", f"{rss:.0f} MB", "—", None, "≤ 400 MB", rss <= 400),
    ]  # fmt: skip


def synth() -> list[Row]:
    out = run("synth.py")
    together = float(find(r"together\s+([\d.]+)× realtime", out)[0])
    parts = find(r"synthesis\s+([\d.]+)×.*\n.*mp3 encode\s+([\d.]+)×", out)
    return [Row("synthesis incl. MP3 (192 kbps), one core", f"{together:.1f}× realtime (synth {parts[0]}×, encode "
                f"{parts[1]}×)", "—", None, "≥ 100× realtime", together >= 100)]  # fmt: skip


def scale(smols: int) -> list[Row]:
    out = run("scale.py", "--smols", str(smols))
    done, total, seconds = find(r"finished: (\d+)/(\d+) in (\d+)s", out)
    peak = float(find(r"peak (\d+) MB", out)[0])
    before, during = find(r"p99 before: ([\d., ]+) ms; while in flight: median ([\d.]+) ms", out)
    met = done == total and int(total) >= 10_000 and peak <= 600
    return [Row("smols in flight on a slow provider", f"{done}/{total} finished in {seconds} s, worker RSS peak "
                f"{peak:.0f} MB; GET /{{id}} p99 {during} ms meanwhile (before: {before} ms)", "—", None,
                "10,000 all finish, worker RSS ≤ 600 MB, GET /{id} p99 unchanged", met)]  # fmt: skip


def search() -> list[Row]:
    out = run("search.py")
    rows = []
    for label, what in (("search", "`GET /search`"), (r"search/\{id\}/similar", "`GET /search/{id}/similar`")):
        api = find(rf"GET /{label}\s+{WRK}", out)
        signed = find(rf"GET /{label}[^\n]*\n\s+\(signed in\)\s+{WRK}", out)
        fresh = find(rf"GET /{label}[^\n]*\n[^\n]*\n\s+\(signed in, made afresh\)\s+{WRK}", out)
        floor = find(rf"GET /{label}(?:[^\n]*\n){{3}}\s+same SQL, asyncpg\s+p50\s+([\d.]+) ms\s+p99\s+([\d.]+) ms", out)
        for how, figures in (("anonymous", api), ("signed in, owning nothing hidden", signed),
                             ("signed in, owning a private smol (made afresh)", fresh)):
            rows.append(Row(f"{what}, 100,000 smols, 10 clients, {how}",
                            f"p50 {ms(figures[0]):.0f} ms, p99 {ms(figures[1]):.0f} ms",
                            f"same SQL: p50 {floor[0]} ms, p99 {floor[1]} ms", ms(figures[1]) / float(floor[1]),
                            "p99 ≤ 50 ms", ms(figures[1]) <= 50))  # fmt: skip
    costs = [int(n) for n in re.findall(r"(\d+) ms", out.split("analyze + index")[1].splitlines()[0])]
    rows.append(Row("indexing (analyze + index, two 30 s songs)", ", ".join(f"{n} ms" for n in costs), "—", None,
                    "≤ 300 ms", max(costs) <= 300))  # fmt: skip
    return rows


def table(rows: list[Row]) -> str:
    lines = ["| what | figure | floor in the same run | ratio | goal | met |", "|---|---|---|---|---|---|"]
    for row in rows:
        ratio = f"{row.ratio:.2f}×" if row.ratio is not None else "—"
        lines.append(f"| {row.what} | {row.figure} | {row.floor} | {ratio} | {row.goal} | "
                     f"{'yes' if row.met else '**no**'} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="catalog,media,pipeline,synth,scale,search")
    parser.add_argument("--scale-smols", type=int, default=10_000)
    args = parser.parse_args()
    benches = {"catalog": catalog, "media": media, "pipeline": pipeline, "synth": synth,
               "scale": lambda: scale(args.scale_smols), "search": search}  # fmt: skip
    rows = []
    for name in args.only.split(","):
        rows += benches[name.strip()]()
    print(f"{os.cpu_count()} cores\n\n{table(rows)}")


if __name__ == "__main__":
    main()
