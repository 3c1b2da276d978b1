"""The cloud the benchmarks read from: an S3 store (embedded on loopback, or AWS), and transfers to it."""

from nwb_cloud.cloud.endpoint import DEFAULT_BUCKET, Endpoint, EndpointError
from nwb_cloud.cloud.store import Store, StoreError
from nwb_cloud.cloud.transfer import upload

__all__ = ["DEFAULT_BUCKET", "Endpoint", "EndpointError", "Store", "StoreError", "upload"]
