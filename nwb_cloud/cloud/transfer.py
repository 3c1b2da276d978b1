"""Uploading files (and Zarr folders) to a store, with a progress bar and a verified size."""

from __future__ import annotations

from pathlib import Path

import botocore
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from nwb_cloud.cloud.store import Store, StoreError, describe_client_error

# 16 MiB parts, in the 8-16 MB range AWS recommends for large objects.
TRANSFER = TransferConfig(multipart_threshold=64 * 2**20, multipart_chunksize=16 * 2**20, max_concurrency=4)


def _files(path: Path) -> list[tuple[Path, str]]:
    if path.is_dir():
        return [(p, p.relative_to(path).as_posix()) for p in sorted(path.rglob("*")) if p.is_file()]
    return [(path, "")]


def upload(store: Store, path: Path, key: str, progress: bool = True) -> None:
    """Put ``path`` (a file, or every file of a folder under ``key/``) into ``store`` at ``key``."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"nothing to upload: {path} does not exist")
    files = _files(path)
    total = sum(p.stat().st_size for p, _ in files)
    client = store.client()
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    with Progress(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task(f"upload {path.name}", total=total)
        for file, relative in files:
            object_key = f"{key}/{relative}" if relative else key
            try:
                client.upload_file(
                    str(file), store.bucket, object_key, Config=TRANSFER,
                    Callback=lambda n: bar.advance(task, n),
                )  # fmt: skip
            except botocore.exceptions.ClientError as error:
                raise StoreError(describe_client_error(error, store.s3_url(object_key))) from None
            except (botocore.exceptions.BotoCoreError, S3UploadFailedError) as error:
                raise StoreError(f"upload of {file} to {store.s3_url(object_key)} failed: {error}") from None
    if not files[0][1]:
        remote = store.head(key)["size"]
        if remote != total:
            raise StoreError(f"upload of {path} to {store.s3_url(key)}: {remote} bytes stored, {total} sent")
