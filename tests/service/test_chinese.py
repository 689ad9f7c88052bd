"""Chinese end to end: per-language thresholds, simplified/traditional blocklist matching, explanations that
quote whole Chinese sentences. Real gateway, broker and worker process with the tiny checkpoint."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import admin_headers, new_key


def _moderate(api: TestClient, headers: dict[str, str], text: str) -> dict:
    resp = api.post("/v1/moderations?wait=10", json={"text": text}, headers=headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "done", body
    return body


def test_chinese_text_is_decided_with_the_chinese_thresholds(api: TestClient) -> None:
    headers, _ = new_key(api)
    # The test policy sets toxicity to 0.01 / 0.02 for zh only; the tiny model scores ~0.12 everywhere.
    assert _moderate(api, headers, "这部电影真好看，推荐大家去看。")["decision"] == "block"
    assert _moderate(api, headers, "這部電影真好看，推薦大家去看。")["decision"] == "block"  # traditional
    assert _moderate(api, headers, "This film is great, go and watch it.")["decision"] == "allow"


def test_tenant_threshold_wins_over_the_language_overlay(api: TestClient) -> None:
    headers, tenant = new_key(api)
    resp = api.put(f"/v1/policies/{tenant}", json={"categories": {"toxicity": {"review": 0.98, "block": 0.99}}},
                   headers=admin_headers())
    assert resp.status_code == 200, resp.text
    assert _moderate(api, headers, "这部电影真好看，推荐大家去看。")["decision"] == "allow"


def test_blocklist_matches_across_simplified_and_traditional(api: TestClient) -> None:
    headers, tenant = new_key(api)
    resp = api.put(f"/v1/policies/{tenant}", json={"blocklist_terms": ["杀了你"],
                                                    "categories": {"toxicity": {"review": 0.98, "block": 0.99}}},
                   headers=admin_headers())
    assert resp.status_code == 200, resp.text
    text = "再吵我就殺了你，聽到沒有"
    body = _moderate(api, headers, text)
    assert body["decision"] == "review"
    [match] = [r for r in body["reasons"] if r["type"] == "blocklist"]
    assert match["term"] == "杀了你" and text[match["start"]:match["end"]] == "殺了你"


def test_long_chinese_text_explanation_quotes_whole_sentences(api: TestClient) -> None:
    headers, _ = new_key(api)
    text = "".join(f"第{i}段：今天我们讨论这部电影的剧情和配乐，大家各抒己见！" for i in range(40))
    body = _moderate(api, headers, text)
    explanation = body["explanation"]
    assert explanation["windows"] > 1
    for s in explanation["top_sentences"]:
        assert text[s["start"]:s["end"]] == s["text"]
        assert s["text"].endswith(("。", "！", "？"))
