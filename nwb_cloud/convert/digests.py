"""What a file's bytes hash to, in every form an S3 store may report, so an upload can be verified.

S3 reports an object's integrity in one of four forms, depending on the store and on how the object was
written: a full SHA-256 checksum, a composite one (the SHA-256 of the parts' SHA-256s, ``-N``), an MD5 ETag,
or a multipart ETag (the MD5 of the parts' MD5s, ``-N``). Uploads and copies here request SHA-256 checksums
and split parts exactly as :data:`nwb_cloud.cloud.transfer.TRANSFER` does, so all four can be computed
locally in one pass and the store's answer compared with ours.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

from s3transfer.utils import ChunksizeAdjuster

from nwb_cloud.cloud.transfer import TRANSFER
from nwb_cloud.convert.errors import ChecksumMismatch

READ_BYTES = 4 * 2**20


def part_size_for(size: int) -> int:
    """The part size s3transfer uses for an object of ``size`` bytes under :data:`TRANSFER`."""
    return ChunksizeAdjuster().adjust_chunksize(TRANSFER.multipart_chunksize, size)


@dataclass(frozen=True)
class Digests:
    size: int
    md5: str  # hex
    sha256: str  # hex
    part_size: int
    parts: int
    md5_multipart: str  # the multipart ETag: md5 of the parts' md5 digests, "-N"
    sha256_composite: str  # base64 of the sha256 of the parts' sha256 digests, "-N"

    @classmethod
    def of(cls, path: Path) -> Digests:
        path = Path(path)
        size = path.stat().st_size
        part_size = part_size_for(size)
        whole_md5, whole_sha = hashlib.md5(), hashlib.sha256()
        part_md5s, part_shas = [], []
        part_md5, part_sha, in_part = hashlib.md5(), hashlib.sha256(), 0
        with open(path, "rb") as stream:
            while block := stream.read(min(READ_BYTES, part_size - in_part)):
                for digest in (whole_md5, whole_sha, part_md5, part_sha):
                    digest.update(block)
                in_part += len(block)
                if in_part == part_size:
                    part_md5s.append(part_md5.digest())
                    part_shas.append(part_sha.digest())
                    part_md5, part_sha, in_part = hashlib.md5(), hashlib.sha256(), 0
        if in_part or not part_md5s:
            part_md5s.append(part_md5.digest())
            part_shas.append(part_sha.digest())
        n = len(part_md5s)
        return cls(
            size=size,
            md5=whole_md5.hexdigest(),
            sha256=whole_sha.hexdigest(),
            part_size=part_size,
            parts=n,
            md5_multipart=f"{hashlib.md5(b''.join(part_md5s)).hexdigest()}-{n}",
            sha256_composite=f"{_b64(hashlib.sha256(b''.join(part_shas)).digest())}-{n}",
        )

    @property
    def sha256_base64(self) -> str:
        return _b64(bytes.fromhex(self.sha256))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Digests:
        return cls(**data)

    def verify(self, head: dict, what: str) -> str:
        """Compare a ``head_object`` answer (asked with ``ChecksumMode='ENABLED'``) with these digests.

        Returns the form that was compared; raises :class:`ChecksumMismatch` when the store holds other bytes,
        or when it reports nothing that can be compared.
        """
        stored = head.get("ContentLength")
        if stored != self.size:
            raise ChecksumMismatch(f"{what}: the store holds {stored} bytes, {self.size} were sent")
        checksum = head.get("ChecksumSHA256")
        if checksum:
            composite = "-" in checksum
            expected = self.sha256_composite if composite else self.sha256_base64
            if checksum != expected:
                raise ChecksumMismatch(f"{what}: stored SHA-256 {checksum} differs from the local {expected}")
            return "sha256-composite" if composite else "sha256"
        etag = str(head.get("ETag", "")).strip('"')
        if not etag:
            raise ChecksumMismatch(f"{what}: the store reports neither a checksum nor an ETag to verify against")
        multipart = "-" in etag
        expected = self.md5_multipart if multipart else self.md5
        if etag != expected:
            raise ChecksumMismatch(f"{what}: stored ETag {etag} differs from the local MD5 {expected}")
        return "md5-multipart" if multipart else "md5"


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()
