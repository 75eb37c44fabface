"""Shared fixtures for the policy tests: a small random policy, and policies served on loopback."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from takeover.app.policy.checkpoint import load_policy, save_checkpoint
from takeover.app.policy.model import Policy
from takeover.app.policy.server import PolicyServer, Predictor, ServerConfig
from takeover.app.policy.testing import random_model


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "policy.safetensors"
    save_checkpoint(random_model(), path, {"note": "random weights for tests"})
    return path


@pytest.fixture
def policy(checkpoint: Path) -> Policy:
    return load_policy(checkpoint)


ServeFn = Callable[..., PolicyServer]


@pytest.fixture
def serve() -> Iterator[ServeFn]:
    """``serve(policy, endpoint=...)``: a server in a thread (default: a free loopback port),
    stopped and closed after the test."""
    running: list[tuple[PolicyServer, threading.Thread]] = []

    def start(policy: Predictor, endpoint: str = "tcp://127.0.0.1:*") -> PolicyServer:
        server = PolicyServer(ServerConfig(endpoint=endpoint, poll_ms=20), policy)
        server.bind()
        thread = threading.Thread(target=server.serve_forever, name="policy-server", daemon=True)
        thread.start()
        running.append((server, thread))
        return server

    yield start
    for server, thread in running:
        server.stop()
        thread.join(timeout=5)
        assert not thread.is_alive(), "server did not stop within 5 s"
        server.close()


@pytest.fixture
def served(serve: ServeFn, policy: Policy) -> PolicyServer:
    return serve(policy)
