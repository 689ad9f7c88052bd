"""Owns moderation policies: per-category review/block thresholds, tenant overrides, and the decision rule."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

DECISION_ORDER = {"allow": 0, "review": 1, "block": 2}


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class Thresholds:
    review: float
    block: float

    @classmethod
    def parse(cls, data: Any, where: str) -> Thresholds:
        if not isinstance(data, dict) or "review" not in data or "block" not in data:
            raise PolicyError(f"{where}: expected {{review: x, block: y}}")
        review, block = float(data["review"]), float(data["block"])
        if not (0.0 <= review <= block <= 1.0):
            raise PolicyError(f"{where}: need 0 <= review <= block <= 1, got {review}, {block}")
        return cls(review, block)

    def to_dict(self) -> dict[str, float]:
        return {"review": self.review, "block": self.block}


@dataclass(frozen=True)
class Policy:
    name: str
    version: int
    categories: dict[str, Thresholds]
    default: Thresholds
    blocklist_terms: tuple[str, ...] = ()
    tenant: str | None = None
    tenant_version: int | None = None
    review_blocked: bool = False  # also send automated blocks to human review
    # Per-kind threshold overrides (image/video scores come from other models, on other scales).
    kinds: dict[str, dict[str, Thresholds]] = field(default_factory=dict)
    # Per-language text thresholds (calibrated per language: the encoder scores zh and en on other scales).
    languages: dict[str, dict[str, Thresholds]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Policy version recorded on verdicts; part of the verdict cache key."""
        base = f"{self.name}@{self.version}"
        return f"{base}+{self.tenant}@{self.tenant_version}" if self.tenant_version else base

    def thresholds(self, category: str) -> Thresholds:
        return self.categories.get(category, self.default)

    def for_kind(self, kind: str) -> Policy:
        """The same policy (same id) with the kind's own thresholds applied."""
        if kind not in self.kinds:
            return self
        return replace(self, categories={**self.categories, **self.kinds[kind]})

    def for_language(self, language: str) -> Policy:
        """The same policy (same id) with the language's own text thresholds applied."""
        if language not in self.languages:
            return self
        return replace(self, categories={**self.categories, **self.languages[language]})

    def without_language_overrides(self, categories: set[str]) -> dict[str, dict[str, Thresholds]]:
        """Language overlays minus `categories`: a tenant's explicit threshold wins in every language."""
        return {lang: {c: t for c, t in cats.items() if c not in categories} for lang, cats in self.languages.items()}

    def decide(self, scores: dict[str, float], force_review: bool = False) -> tuple[str, list[str]]:
        """Decision = most severe category outcome; flagged = categories at or above `review`."""
        decision = "allow"
        flagged: list[str] = []
        for category, score in scores.items():
            t = self.thresholds(category)
            if score >= t.block:
                decision = "block"
                flagged.append(category)
            elif score >= t.review:
                flagged.append(category)
                if decision == "allow":
                    decision = "review"
        if force_review and decision == "allow":
            decision = "review"
        return decision, flagged

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "version": self.version, "tenant": self.tenant,
            "tenant_version": self.tenant_version,
            "categories": {c: t.to_dict() for c, t in sorted(self.categories.items())},
            "default_thresholds": self.default.to_dict(), "blocklist_terms": list(self.blocklist_terms),
            "review_blocked": self.review_blocked,
            "kinds": {k: {c: t.to_dict() for c, t in sorted(v.items())} for k, v in sorted(self.kinds.items())},
            "languages": {k: {c: t.to_dict() for c, t in sorted(v.items())}
                          for k, v in sorted(self.languages.items())},
        }


def parse_policy(data: Any, where: str) -> Policy:
    if not isinstance(data, dict):
        raise PolicyError(f"{where}: policy must be a mapping")
    try:
        name, version = str(data["name"]), int(data["version"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyError(f"{where}: policy needs `name` and integer `version`") from exc
    cats = data.get("categories") or {}
    if not isinstance(cats, dict):
        raise PolicyError(f"{where}: categories must be a mapping")
    blocklist = data.get("blocklist") or {}
    terms = blocklist.get("terms") or [] if isinstance(blocklist, dict) else []
    return Policy(
        name=name,
        version=version,
        categories={str(c): Thresholds.parse(t, f"{where}: {c}") for c, t in cats.items()},
        default=Thresholds.parse(data.get("default_thresholds", {"review": 0.5, "block": 0.9}),
                                 f"{where}: default_thresholds"),
        blocklist_terms=tuple(str(t) for t in terms),
        review_blocked=bool(data.get("review_blocked", False)),
        kinds=_parse_kinds(data.get("kinds") or {}, where),
        languages=_parse_languages(data.get("languages") or {}, where),
    )


def _parse_languages(data: Any, where: str) -> dict[str, dict[str, Thresholds]]:
    if not isinstance(data, dict):
        raise PolicyError(f"{where}: languages must be a mapping of language -> {{categories: ...}}")
    out: dict[str, dict[str, Thresholds]] = {}
    for lang, spec in data.items():
        cats = (spec or {}).get("categories") if isinstance(spec, dict) else None
        if not isinstance(cats, dict):
            raise PolicyError(f"{where}: languages.{lang} needs a categories mapping")
        out[str(lang)] = {str(c): Thresholds.parse(t, f"{where}: languages.{lang}.{c}") for c, t in cats.items()}
    return out


def _parse_kinds(data: Any, where: str) -> dict[str, dict[str, Thresholds]]:
    if not isinstance(data, dict):
        raise PolicyError(f"{where}: kinds must be a mapping of kind -> {{categories: ...}}")
    out: dict[str, dict[str, Thresholds]] = {}
    for kind, spec in data.items():
        if kind not in ("text", "image", "video"):
            raise PolicyError(f"{where}: unknown kind {kind!r}")
        cats = (spec or {}).get("categories") or {}
        out[kind] = {str(c): Thresholds.parse(t, f"{where}: kinds.{kind}.{c}") for c, t in cats.items()}
    return out


_FILE_CACHE: dict[Path, tuple[float, Policy]] = {}


def load_policy_file(path: Path) -> Policy:
    """Parse the base policy, re-reading only when the file changed (workers call this per task)."""
    path = Path(path)
    try:
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise PolicyError(f"policy file {path} unreadable: {exc}") from exc
    cached = _FILE_CACHE.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    policy = parse_policy(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
    _FILE_CACHE[path] = (mtime, policy)
    return policy
