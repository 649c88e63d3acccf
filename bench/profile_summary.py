"""Summarise a py-spy raw (collapsed stacks) profile: self time per function and per area."""

import sys
from collections import Counter


def main(path: str, top: int = 25) -> None:
    self_time: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            stack, _, count = line.rstrip().rpartition(" ")
            if not stack:
                continue
            samples = int(count)
            total += samples
            frames = stack.split(";")
            self_time[frames[-1]] += samples
            areas[_area(frames)] += samples
    print(f"{total} samples")
    print("\nby area (innermost project frame or library):")
    for name, samples in areas.most_common(12):
        print(f"  {100 * samples / total:5.1f}%  {name}")
    print("\nby function (self time):")
    for name, samples in self_time.most_common(top):
        print(f"  {100 * samples / total:5.1f}%  {name}")


def _area(frames: list[str]) -> str:
    for frame in reversed(frames):
        for marker in ("apps/", "nexus/engine/", "nexus/"):
            if marker in frame:
                return frame.split("(")[-1].split(":")[0].strip(")")
    for frame in reversed(frames):
        for library in (
            "uvicorn",
            "aiohttp",
            "httptools",
            "uvloop",
            "orjson",
            "asyncio",
            "django",
            "redis",
        ):
            if library in frame:
                return library
    return "other"


if __name__ == "__main__":
    main(sys.argv[1])
