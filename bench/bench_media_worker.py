"""Images/s through the whole media path (upload → blob store → media worker → verdict), vs the bare
pipeline function on the same files in the same run.

    python -m bench.bench_media_worker --n 40
"""

from __future__ import annotations

import argparse
import io
import time

import httpx
import numpy as np
from PIL import Image

from bench.stack import private_stack


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
    from pathlib import Path

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


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40)
    args = parser.parse_args()
    files = images(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        bare_rate = bare(files, tmp)
    with private_stack({"MOD_BOOTSTRAP_PLATFORM_KEY": "bench-key"}, [("text", 1), ("media", 1)]) as (base, _):
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
    print(f"images={args.n} (1280x960 JPEG) done={len(done)}")
    print(f"bare pipeline (decode+hash+2 models): {bare_rate:.1f} images/s")
    print(f"through upload + media worker: {len(done) / span:.1f} images/s  ratio {len(done) / span / bare_rate:.2f}")


if __name__ == "__main__":
    main()
