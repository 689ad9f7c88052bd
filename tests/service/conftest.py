"""Fixtures shared by more than one module of tests/service (each module still gets its own instance)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Stack
from tests.support.openai_gateway import Gateway, serve


@pytest.fixture(scope="module")
def gw(stack: Stack) -> Iterator[Gateway]:
    # A generous bound: on a loaded 2-core machine a first media verdict includes loading the ONNX models.
    with serve(stack.settings.model_copy(update={"compat_wait_s": 240.0})) as url:
        gateway = Gateway(url)
        yield gateway
        gateway.http.close()
