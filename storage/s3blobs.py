"""Content-addressed blobs in S3-compatible object storage, through fsspec/s3fs.

URL: ``s3://bucket/prefix``; the blobs are the objects ``prefix/blobs/sha256/ab/abcdef...`` (the
same layout as a local store). The endpoint and credentials come from the usual AWS settings
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION`` or
the shared config files); ``?endpoint=http://host:port`` in the URL overrides the endpoint, for
MinIO, Ceph or a test server.

Uploads are atomic: an object is written either by one PUT of its whole body or by a multipart
upload that is completed only after every byte has been read and hashed to the blob's digest. A
failure part-way (a read error, bytes that do not match the digest, the network) aborts the upload,
so the object is absent, never partial. A killed process leaves at most an unfinished multipart
upload, which is no object (a bucket lifecycle rule removes such uploads after a day).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

from takeover.storage.blobs import check_digest, is_digest, put_file_by_stream
from takeover.storage.errors import BlobNotFoundError, BlobStoreUnavailableError, CorruptBlobError

_CHUNK = 8 << 20
_PART = 8 << 20
"""Multipart part size: a blob larger than this is uploaded in parts (S3's minimum is 5 MiB)."""
_COPY_MAX = 5 << 30
"""The largest object S3 copies in one request."""


class S3BlobStore:
    """Blobs under ``s3://bucket/prefix``. No I/O in the constructor."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint: str | None = None, **options: Any) -> None:
        import s3fs

        if not bucket:
            raise ValueError("an S3 blob store URL needs a bucket: s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._endpoint_arg, self._options = endpoint, options
        self.endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL") or None
        query = f"?endpoint={endpoint}" if endpoint else ""
        self.url = f"s3://{bucket}/{self.prefix}{query}".replace(f"{bucket}/?", f"{bucket}?")
        client: dict[str, Any] = {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 2}}
        kwargs: dict[str, Any] = {
            "use_listings_cache": False,
            "skip_instance_cache": True,
            "config_kwargs": client,
            **options,
        }
        if self.endpoint:
            kwargs["endpoint_url"] = self.endpoint
        self.fs = s3fs.S3FileSystem(**kwargs)
        base = f"{bucket}/{self.prefix}" if self.prefix else bucket
        self._base = f"{base}/blobs/sha256"

    @classmethod
    def from_url(cls, url: str) -> S3BlobStore:
        parts = urlsplit(url)
        if parts.scheme != "s3":
            raise ValueError(f"not an S3 URL: {url!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        endpoint = query.pop("endpoint", None)
        if query:
            raise ValueError(f"unknown option(s) in the blob store URL {url!r}: {', '.join(sorted(query))}")
        return cls(parts.netloc, parts.path, endpoint=endpoint)

    def sub(self, name: str) -> S3BlobStore:
        prefix = f"{self.prefix}/{name}" if self.prefix else name
        return S3BlobStore(self.bucket, prefix, endpoint=self._endpoint_arg, **self._options)

    def key(self, digest: str) -> str:
        """The object (``bucket/key``) that holds blob ``digest``."""
        check_digest(digest)
        return f"{self._base}/{digest[:2]}/{digest}"

    def _where(self) -> str:
        return f"s3://{self._base}" + (f" at {self.endpoint}" if self.endpoint else "")

    def _unavailable(self, exc: BaseException) -> BlobStoreUnavailableError:
        return unavailable(exc, self._where())

    def has(self, digest: str) -> bool:
        check_digest(digest)
        try:
            self._head(digest)
            return True
        except FileNotFoundError:
            return False
        except Exception as exc:
            raise self._unavailable(exc) from None

    def _head(self, digest: str) -> dict[str, Any]:
        """One HEAD request for the blob's object (FileNotFoundError if absent)."""
        head: dict[str, Any] = self.fs.call_s3(
            "head_object", Bucket=self.bucket, Key=self._object_key(digest)
        )
        return head

    def _object_key(self, digest: str) -> str:
        return self.key(digest).split("/", 1)[1]

    def size(self, digest: str) -> int:
        check_digest(digest)
        try:
            return int(self._head(digest)["ContentLength"])
        except FileNotFoundError:
            raise self._missing(digest) from None
        except Exception as exc:
            raise self._unavailable(exc) from None

    def verify(self, digest: str) -> bool:
        h = hashlib.sha256()
        try:
            with self.open(digest) as f:
                for chunk in iter(lambda: f.read(_CHUNK), b""):
                    h.update(chunk)
        except BlobNotFoundError:
            return False
        return h.hexdigest() == digest

    def modified(self, digest: str) -> float:
        """The object's LastModified (the server's clock), in seconds since the epoch."""
        check_digest(digest)
        try:
            return float(self._head(digest)["LastModified"].timestamp())
        except FileNotFoundError:
            raise self._missing(digest) from None
        except Exception as exc:
            raise self._unavailable(exc) from None

    def _has_refreshed(self, digest: str) -> bool:
        """True if the blob is stored; then its LastModified is made now (the object copied onto
        itself), so that a put of a blob an unreferenced copy already holds does not look old to
        `gc` before it is cataloged. (S3 copies at most 5 GiB in one request; a larger object
        keeps its time.)"""
        check_digest(digest)
        try:
            head = self._head(digest)
        except FileNotFoundError:
            return False
        except Exception as exc:
            raise self._unavailable(exc) from None
        if int(head["ContentLength"]) < _COPY_MAX:
            key = self._object_key(digest)
            try:
                self.fs.call_s3(
                    "copy_object",
                    Bucket=self.bucket,
                    Key=key,
                    CopySource={"Bucket": self.bucket, "Key": key},
                    MetadataDirective="REPLACE",
                )
            except Exception as exc:
                raise self._unavailable(exc) from None
        return True

    def put_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if not self._has_refreshed(digest):
            try:
                self.fs.pipe_file(self.key(digest), data)  # one PUT of the whole body
            except Exception as exc:
                raise self._unavailable(exc) from None
        return digest

    def put_file(self, path: Path | str, expected_digest: str | None = None) -> str:
        return put_file_by_stream(self, path, expected_digest)

    def adopt_file(self, path: Path | str, digest: str) -> str:
        """Upload the finished file at ``path`` (object storage has no hard links)."""
        return self.put_file(path, expected_digest=digest)

    def put_stream(self, src: BinaryIO, digest: str) -> str:
        """Store the bytes read from ``src`` as blob ``digest``; nothing is stored if reading fails
        or the bytes do not hash to ``digest``."""
        if self._has_refreshed(digest):
            return digest
        key = self.key(digest)
        h = hashlib.sha256()
        try:
            out = self.fs.open(key, "wb", block_size=_PART)
        except Exception as exc:
            raise self._unavailable(exc) from None
        try:
            for chunk in iter(lambda: src.read(_CHUNK), b""):
                h.update(chunk)
                out.write(chunk)
            if h.hexdigest() != digest:
                raise CorruptBlobError(f"the bytes given for blob {digest} hash to {h.hexdigest()}")
        except BaseException:
            out.discard()  # aborts a multipart upload; a single PUT was never sent
            out.closed = True  # so that nothing is flushed when the file object is collected
            raise
        try:
            out.close()  # the one PUT, or the completion of the multipart upload
        except Exception as exc:
            raise self._unavailable(exc) from None
        return digest

    def open(self, digest: str) -> BinaryIO:
        try:
            f: BinaryIO = self.fs.open(self.key(digest), "rb", block_size=_CHUNK, cache_type="readahead")
            return f
        except FileNotFoundError:
            raise self._missing(digest) from None
        except Exception as exc:
            raise self._unavailable(exc) from None

    def get_bytes(self, digest: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(self.key(digest)))
        except FileNotFoundError:
            raise self._missing(digest) from None
        except Exception as exc:
            raise self._unavailable(exc) from None

    def read_range(self, digest: str, start: int, length: int) -> bytes:
        """One ranged GET."""
        if length <= 0:
            return b""
        try:
            return bytes(self.fs.cat_file(self.key(digest), start=start, end=start + length))
        except FileNotFoundError:
            raise self._missing(digest) from None
        except OSError as exc:
            if "not satisfiable" in str(exc) and start >= self.size(digest):
                return b""  # a range past the end, as a file read there gives
            raise self._unavailable(exc) from None
        except Exception as exc:
            raise self._unavailable(exc) from None

    def fetch_to(self, digest: str, dest: Path) -> None:
        try:
            self.fs.get_file(self.key(digest), str(dest))
        except FileNotFoundError:
            raise self._missing(digest) from None
        except Exception as exc:
            raise self._unavailable(exc) from None

    def remove(self, digest: str) -> None:
        try:
            self.fs.rm_file(self.key(digest))
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise self._unavailable(exc) from None

    def digests(self) -> Iterator[str]:
        try:
            found = self.fs.find(self._base)
        except FileNotFoundError:
            return
        except Exception as exc:
            raise self._unavailable(exc) from None
        for key in sorted(found):
            name = key.rsplit("/", 1)[-1]
            if is_digest(name):
                yield name

    def _missing(self, digest: str) -> BlobNotFoundError:
        return BlobNotFoundError(f"blob {digest} is missing from {self._where()}")


def unavailable(exc: BaseException, where: str) -> BlobStoreUnavailableError:
    """An object-storage failure as one line a person can act on."""
    text = f"{type(exc).__name__}: {exc}"
    if "NoCredentialsError" in text or "Unable to locate credentials" in text:
        return BlobStoreUnavailableError(
            f"no credentials for the object store {where}: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
        )
    if isinstance(exc, PermissionError) or any(
        s in text for s in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden")
    ):
        return BlobStoreUnavailableError(
            f"the object store {where} refused the credentials: check AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or the profile) and the bucket's permissions"
        )
    if "NoSuchBucket" in text or "bucket does not exist" in text.lower():
        return BlobStoreUnavailableError(f"the bucket of {where} does not exist: create it, or fix the URL")
    if any(s in text for s in ("Connect", "connect", "Timeout", "timed out", "EndpointConnectionError")):
        return BlobStoreUnavailableError(
            f"cannot reach the object store {where}: check that it is running and the endpoint URL"
        )
    return BlobStoreUnavailableError(f"the object store {where} failed: {text.splitlines()[0][:200]}")
