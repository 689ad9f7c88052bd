"""Owns FAQ files: parsing YAML into entries and refusing bad files with the offending line number.

Schema (one collection and one language per file): {collection: str, language: en|zh, out_of_scope: [str, ...],
entries: [{id, questions: [str, ...], not_questions: [str, ...], answer, tags: [...]}]}. `question: str` is accepted
for a single phrasing. `not_questions` are an entry's negative exemplars (neighbouring questions it must not answer);
`out_of_scope` are the collection's. `<collection>.yaml` is the collection's first language, `<collection>.<lang>.yaml`
a translation with the same entry ids (discover() groups them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode


class FaqLoadError(ValueError):
    """A FAQ file that must not be served; `line` is 1-based (None when the file as a whole is wrong)."""

    def __init__(self, path: Path | str, message: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.reason = str(path), line, message


@dataclass(frozen=True)
class FaqEntry:
    id: str
    questions: tuple[str, ...]
    answer: str
    tags: tuple[str, ...] = ()
    line: int = 0
    not_questions: tuple[str, ...] = ()
    language: str = "en"


@dataclass
class FaqCollection:
    name: str
    entries: list[FaqEntry]
    path: str = ""
    language: str = "en"
    out_of_scope: tuple[str, ...] = ()
    by_id: dict[str, FaqEntry] = field(init=False)

    def __post_init__(self) -> None:
        self.by_id = {e.id: e for e in self.entries}


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _scalar(path: Path, node: Node, what: str) -> str:
    if not isinstance(node, ScalarNode) or not str(node.value).strip():
        raise FaqLoadError(path, f"{what} must be a non-empty string", _line(node))
    return str(node.value).strip()


def _mapping(node: MappingNode) -> dict[str, Node]:
    return {str(k.value): v for k, v in node.value if isinstance(k, ScalarNode)}


LANGUAGES = ("en", "zh")


def _strings(path: Path, node: Node | None, what: str) -> tuple[str, ...]:
    if node is None:
        return ()
    if not isinstance(node, SequenceNode):
        raise FaqLoadError(path, f"{what} must be a list of strings", _line(node))
    return tuple(_scalar(path, q, what) for q in node.value)


def file_language(path: Path) -> str | None:
    """`platform.zh.yaml` -> "zh"; `platform.yaml` -> None (the file's own `language:`, default en)."""
    parts = path.name.split(".")
    return parts[1] if len(parts) == 3 else None


def load_collection(path: Path, name: str | None = None) -> FaqCollection:
    """Parse and validate one FAQ file; FaqLoadError on duplicate ids, missing answers, malformed YAML."""
    try:
        # compose() keeps node positions, which plain safe_load throws away; we need them for errors.
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise FaqLoadError(path, f"invalid YAML: {exc.problem}", line) from exc
    except OSError as exc:
        raise FaqLoadError(path, f"cannot read: {exc.strerror}") from exc
    if root is None:
        raise FaqLoadError(path, "empty file")
    language = file_language(path)
    out_of_scope: tuple[str, ...] = ()
    if isinstance(root, MappingNode):
        top = _mapping(root)
        entries_node = top.get("entries")
        if "collection" in top:
            name = name or _scalar(path, top["collection"], "collection")
        if "language" in top:
            declared = _scalar(path, top["language"], "language")
            if declared not in LANGUAGES or (language is not None and declared != language):
                raise FaqLoadError(path, f"language {declared!r} must be one of {LANGUAGES} and match the file name",
                                   _line(top["language"]))
            language = declared
        out_of_scope = _strings(path, top.get("out_of_scope"), "out_of_scope question")
        if entries_node is None:
            raise FaqLoadError(path, "missing 'entries' list", _line(root))
    else:
        entries_node = root
    if language is not None and language not in LANGUAGES:
        raise FaqLoadError(path, f"unknown language {language!r} in the file name (one of {LANGUAGES})")
    if not isinstance(entries_node, SequenceNode) or not entries_node.value:
        raise FaqLoadError(path, "'entries' must be a non-empty list", _line(entries_node))
    language = language or "en"
    entries: list[FaqEntry] = []
    seen: dict[str, int] = {}
    for node in entries_node.value:
        if not isinstance(node, MappingNode):
            raise FaqLoadError(path, "each entry must be a mapping", _line(node))
        m = _mapping(node)
        if "id" not in m:
            raise FaqLoadError(path, "entry without 'id'", _line(node))
        eid = _scalar(path, m["id"], "id")
        if eid in seen:
            raise FaqLoadError(path, f"duplicate id {eid!r} (first defined on line {seen[eid]})", _line(m["id"]))
        seen[eid] = _line(m["id"])
        if "answer" not in m:
            raise FaqLoadError(path, f"entry {eid!r} has no answer", _line(node))
        answer = _scalar(path, m["answer"], f"answer of {eid!r}")
        qnode = m.get("questions", m.get("question"))
        if qnode is None:
            raise FaqLoadError(path, f"entry {eid!r} has no questions", _line(node))
        qnodes = qnode.value if isinstance(qnode, SequenceNode) else [qnode]
        questions = tuple(_scalar(path, q, f"question of {eid!r}") for q in qnodes)
        if not questions:
            raise FaqLoadError(path, f"entry {eid!r} has no questions", _line(qnode))
        tnode = m.get("tags")
        tags = tuple(_scalar(path, t, "tag") for t in tnode.value) if isinstance(tnode, SequenceNode) else ()
        negatives = _strings(path, m.get("not_questions"), f"not_question of {eid!r}")
        entries.append(FaqEntry(eid, questions, answer, tags, _line(node), negatives, language))
    return FaqCollection(name or path.name.split(".")[0], entries, str(path), language, out_of_scope)


def discover(root: Path) -> dict[tuple[str, str], list[Path]]:
    """{(tenant, collection): files} for root/<tenant>/<collection>[.<lang>].yaml (and .yml); the file without a
    language suffix comes first (it names the collection's default language)."""
    found: dict[tuple[str, str], list[Path]] = {}
    for f in sorted(root.glob("*/*.y*ml"), key=lambda p: (p.parent.name, p.name.split(".")[0], p.name.count("."))):
        if f.suffix in (".yaml", ".yml") and f.name.count(".") <= 2:
            found.setdefault((f.parent.name, f.name.split(".")[0]), []).append(f)
    return found
