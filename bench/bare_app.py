"""A bare FastAPI endpoint: the ceiling the gateway's accept rate is compared against."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Body(BaseModel):
    text: str


@app.post("/v1/moderations", status_code=202)
async def accept(body: Body) -> dict[str, Any]:
    return {"id": "x", "status": "queued", "len": len(body.text)}
