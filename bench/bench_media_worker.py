"""Throughput of the whole media path (upload → blob store → media worker → verdict), against baselines measured
in the same run.

    python -m bench.bench_media_worker --n 40                  # images/s through the worker vs the bare pipeline
    python -m bench.bench_media_worker --video 60 --repeat 5 [--baseline-tree DIR]

Video mode uploads two 720p videos, the movie-like one built from real photos (bench.bench_media_movie) and the
worst case (bench.bench_media.make_video: moving textures, every sampled frame different), to two stacks with one
media worker each (one process, `-c 1`): "before" with near-duplicate reuse off (MOD_MEDIA__REUSE_SCORES=false,
the flow before it) and "after" with the default settings, and times each item from `created_at` to
`completed_at`, i.e. through the gateway, the queue, the worker and the verdict store. Real-time factor = video
seconds / those seconds (goal: >= 40 on a 2-core worker, 1 fps sampling, both image models). In the same run,
interleaved round by round, it times the bare pipeline in this process (`moderate_file`, warm) and raw OpenCV
decoding of the file (the least work that yields its 1 fps frames) as a yardstick for the machine's current speed.
With `--baseline-tree DIR` (another checkout, e.g. `git archive <commit> | tar -x -C DIR`; its `var/` may be a
symlink to this one's) a third stack runs that code in the same rounds.
Prints the median and the minimum of each, and the load average, since shared machines vary between rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from bench.stack import private_stack, stack_from

STACK_ENV = {"MOD_BOOTSTRAP_PLATFORM_KEY": "bench-key"}
WORKERS = [("text", 1), ("media", 1)]


def images(n: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        # Smooth random photos-like images (noise alone compresses badly and is unlike uploads).
        small = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((1280, 960), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def bare(files: list[bytes], tmp: str) -> float:
    from models.vision.pipeline import moderate_image_file

    paths = []
    for i, data in enumerate(files):
        p = Path(tmp) / f"{i}.jpg"
        p.write_bytes(data)
        paths.append(p)
    moderate_image_file(paths[0])  # load models
    start = time.perf_counter()
    for p in paths:
        moderate_image_file(p)
    return len(paths) / (time.perf_counter() - start)


def bench_images(n: int) -> None:
    import tempfile

    files = images(n)
    with tempfile.TemporaryDirectory() as tmp:
        bare_rate = bare(files, tmp)
    with private_stack(STACK_ENV, WORKERS) as (base, _):
        headers = {"Authorization": "Bearer bench-key"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
            ids = [c.post("/v1/moderations/image", files={"file": (f"{i}.jpg", d)}).json()["id"]
                   for i, d in enumerate(files)]
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                final = [c.get(f"/v1/moderations/{i}").json() for i in ids]
                if all(f["status"] in ("done", "failed", "rejected") for f in final):
                    break
                time.sleep(1)
    done = [f for f in final if f["status"] == "done"]
    span = max(f["completed_at"] for f in done) - min(f["created_at"] for f in final)
    print(f"images={n} (1280x960 JPEG) done={len(done)}")
    print(f"bare pipeline (decode+hash+2 models): {bare_rate:.1f} images/s")
    print(f"through upload + media worker: {len(done) / span:.1f} images/s  ratio {len(done) / span / bare_rate:.2f}")


def _video_seconds(client: httpx.Client, data: bytes, name: str) -> float:
    """Seconds from upload to verdict for one video, as the service recorded them."""
    item_id = client.post("/v1/moderations/video", files={"file": (name, data)}).json()["id"]
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        item = client.get(f"/v1/moderations/{item_id}").json()
        if item["status"] in ("done", "failed", "rejected"):
            if item["status"] != "done":
                raise RuntimeError(f"video item ended {item['status']}: {item.get('error')}")
            return float(item["completed_at"]) - float(item["created_at"])
        time.sleep(0.05)
    raise TimeoutError(item_id)


def _raw_decode(path: Path) -> float:
    from bench.bench_media import raw_same_frames

    start = time.perf_counter()
    raw_same_frames(path)
    return time.perf_counter() - start


def _bare(path: Path) -> float:
    from models.vision.pipeline import moderate_file

    start = time.perf_counter()
    moderate_file(path)
    return time.perf_counter() - start


def _summary(label: str, times: list[float], video_s: float) -> str:
    med, low = statistics.median(times), min(times)
    return (f"  {label:44} median {med:6.2f} s ({video_s / med:5.1f}x real time)   "
            f"min {low:6.2f} s ({video_s / low:5.1f}x)")


REUSE_OFF = {**STACK_ENV, "MOD_MEDIA__REUSE_SCORES": "false"}


def bench_video(seconds: int, repeat: int, baseline_tree: Path | None) -> None:
    from bench.bench_media import make_video
    from bench.bench_media_movie import make_movie
    from training.vision.fetch import CACHE, fetch_models

    fetch_models()
    videos = {"movie-like (real photos)": make_movie(),
              "worst case (every frame different)": make_video(
                  CACHE / "bench" / f"synthetic_{seconds}s_720p_mp4v_v3.mp4", seconds=seconds)}
    # The baseline is this tree with near-duplicate reuse off (the flow before it), in the same run.
    stacks: dict[str, tuple[Callable[..., AbstractContextManager[tuple[str, str]]], dict[str, str]]] = {
        "before: worker, reuse off": (private_stack, REUSE_OFF), "after: worker, reuse on": (private_stack, STACK_ENV)}
    if baseline_tree is not None:
        stacks = {"worker (baseline tree)": (stack_from(baseline_tree.resolve()), STACK_ENV), **stacks}
    load_before = os.getloadavg()
    times: dict[str, dict[str, list[float]]] = {v: {name: [] for name in stacks} for v in videos}
    for v in videos:
        times[v]["bare pipeline, this process (reuse on)"] = []
        times[v]["raw decode (grab all, retrieve 1 fps)"] = []
    with contextlib.ExitStack() as es:
        clients = {}
        for name, (factory, env) in stacks.items():
            base, _ = es.enter_context(factory(env, WORKERS))
            clients[name] = es.enter_context(
                httpx.Client(base_url=base, headers={"Authorization": "Bearer bench-key"}, timeout=120))
            _video_seconds(clients[name], videos["worst case (every frame different)"].read_bytes(), "warmup.mp4")
        for path in videos.values():
            _bare(path)
        for r in range(repeat):
            try:
                _round(r, videos, clients, times)
            except (httpx.HTTPError, RuntimeError, TimeoutError) as exc:  # a shared VM: keep what was measured
                print(f"stopped in round {r + 1}: {exc!r}; figures below are from the rounds before")
                break
    load_after = os.getloadavg()
    print(f"{repeat} interleaved rounds; cpus {os.cpu_count()}; load average {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after")
    for label, path in videos.items():
        video_s = _duration_s(path)
        print(f"{label}: {path.name} ({video_s:.1f} s, 1280x720, 30 fps, mp4v)")
        for name, values in times[label].items():
            if values:
                print(_summary(name, values, video_s))
        before, after = times[label]["before: worker, reuse off"], times[label]["after: worker, reuse on"]
        if before and after:
            print(f"  speed-up after vs before: median {statistics.median(before) / statistics.median(after):.2f}x,"
                  f" min {min(before) / min(after):.2f}x")


def _round(r: int, videos: dict[str, Path], clients: dict[str, httpx.Client],
           times: dict[str, dict[str, list[float]]]) -> None:
    for n, (label, path) in enumerate(videos.items()):
        data = path.read_bytes()
        # Alternate the order each round so neither side always runs right after the other.
        order: Iterator[str] = iter(list(clients) if r % 2 == 0 else list(reversed(clients)))
        for name in order:
            # Each upload needs a new content hash or the verdict cache answers: append 3 bytes after
            # the container's last box (fewer than a box header's 8, so demuxers ignore them).
            tag = bytes([r, n, list(clients).index(name)])
            times[label][name].append(_video_seconds(clients[name], data + tag, f"bench_{r}.mp4"))
        times[label]["bare pipeline, this process (reuse on)"].append(_bare(path))
        times[label]["raw decode (grab all, retrieve 1 fps)"].append(_raw_decode(path))


def _duration_s(path: Path) -> float:
    import cv2

    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        return float(cap.get(cv2.CAP_PROP_FRAME_COUNT) / cap.get(cv2.CAP_PROP_FPS))
    finally:
        cap.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40, help="images mode: number of images")
    parser.add_argument("--video", type=int, default=0, metavar="SECONDS", help="video mode: video length")
    parser.add_argument("--repeat", type=int, default=5, help="video mode: interleaved rounds")
    parser.add_argument("--baseline-tree", type=Path, default=None, help="video mode: checkout to compare with")
    args = parser.parse_args()
    if args.video:
        bench_video(args.video, args.repeat, args.baseline_tree)
    else:
        bench_images(args.n)


if __name__ == "__main__":
    main()

