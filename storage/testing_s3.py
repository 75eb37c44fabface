"""A real S3 endpoint on loopback for tests: moto's server mode on 127.0.0.1 and a free port.

The server speaks the S3 REST protocol over HTTP, so the code under test goes through s3fs,
aiobotocore and real sockets exactly as against a remote bucket. moto is a test dependency.
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_s3_server() -> Iterator[str]:
    """Start an S3 server on loopback; yield its endpoint URL; stop it afterwards."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def make_bucket(endpoint: str, name: str | None = None) -> str:
    """Create a uniquely named bucket on ``endpoint``; return its name."""
    import boto3

    bucket = name or f"takeover-test-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=TEST_CREDENTIALS["AWS_DEFAULT_REGION"],
    )
    client.create_bucket(Bucket=bucket)
    return bucket


_AUTH_SERVER = """
import sys, time
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
print("up", flush=True)
sys.stdin.read()  # until the parent closes stdin
server.stop()
"""


@contextmanager
def moto_s3_server_checking_credentials() -> Iterator[str]:
    """An S3 server on loopback that refuses every request whose credentials it does not know (all
    of them: it has no users). A process of its own, since moto reads that setting when imported."""
    import os
    import subprocess
    import sys

    port = free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _AUTH_SERVER, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"up"
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
