"""What AWS charges: a dated price table shipped in the package, refreshable from AWS's own APIs.

The shipped table is AWS's public Linux on-demand prices for x86_64 general, compute and memory instance
families (linear across sizes within a family, as AWS prices them), gp3 EBS, S3 Standard storage, requests
and transfer, transcribed on :data:`AS_OF`. "Typical spot" is a fixed fraction of on-demand (Spot Instance
Advisor's 60-70 % savings for these families): spot really varies by zone and hour, so ``refresh`` replaces
it with the 7-day median of DescribeSpotPriceHistory and on-demand with the AWS Pricing API's answer.
Every estimate names the table's date and source among its assumptions.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nwb_cloud.batch.errors import PriceError

AS_OF = "2026-11-01"
SOURCE = "AWS public price list (Linux, shared tenancy), transcribed; spot = typical fraction of on-demand"


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_gib: float

    @property
    def family(self) -> str:
        return self.name.split(".")[0]


_SIZES = {"large": (2, 1), "xlarge": (4, 2), "2xlarge": (8, 4), "4xlarge": (16, 8)}  # vCPUs, x the large price
_MEMORY_PER_VCPU = {"c": 2, "m": 4, "r": 8}  # GiB
FAMILIES = ("c6i", "m6i", "r6i", "c7i", "m7i", "r7i")
INSTANCE_TYPES: dict[str, InstanceType] = {
    f"{family}.{size}": InstanceType(f"{family}.{size}", vcpus, vcpus * _MEMORY_PER_VCPU[family[0]])
    for family in FAMILIES
    for size, (vcpus, _) in _SIZES.items()
}

# On-demand $/hour of the ".large" size of each family, per region.
_LARGE_ON_DEMAND = {
    "us-east-1": {"c6i": 0.085, "m6i": 0.096, "r6i": 0.126, "c7i": 0.08925, "m7i": 0.1008, "r7i": 0.1323},
    "us-east-2": {"c6i": 0.085, "m6i": 0.096, "r6i": 0.126, "c7i": 0.08925, "m7i": 0.1008, "r7i": 0.1323},
    "us-west-2": {"c6i": 0.085, "m6i": 0.096, "r6i": 0.126, "c7i": 0.08925, "m7i": 0.1008, "r7i": 0.1323},
    "eu-west-1": {"c6i": 0.0912, "m6i": 0.107, "r6i": 0.141, "c7i": 0.09576, "m7i": 0.1124, "r7i": 0.1484},
    "eu-central-1": {"c6i": 0.097, "m6i": 0.115, "r6i": 0.152, "c7i": 0.10185, "m7i": 0.1208, "r7i": 0.1596},
}
_TYPICAL_SPOT_FRACTION = {"c": 0.38, "m": 0.40, "r": 0.34}


def _shipped_hourly(fraction_of: dict[str, float] | None = None) -> dict[str, dict[str, float]]:
    table = {}
    for region, families in _LARGE_ON_DEMAND.items():
        table[region] = {}
        for name, itype in INSTANCE_TYPES.items():
            price = families[itype.family] * _SIZES[name.split(".")[1]][1]
            if fraction_of is not None:
                price *= fraction_of[itype.family[0]]
            table[region][name] = round(price, 5)
    return table


@dataclass(frozen=True)
class PriceTable:
    as_of: str
    source: str
    on_demand: dict[str, dict[str, float]]  # region -> instance type -> $/hour
    spot: dict[str, dict[str, float]]
    ebs_gp3_gb_month: dict[str, float]
    s3_gb_month: dict[str, float]
    s3_put_per_1000: dict[str, float]  # PUT, COPY, POST, LIST
    s3_get_per_1000: dict[str, float]
    inter_region_gb: float = 0.02
    internet_out_gb: float = 0.09
    notes: tuple[str, ...] = field(default=())

    @property
    def regions(self) -> list[str]:
        return sorted(self.on_demand)

    def _region(self, region: str) -> None:
        if region not in self.on_demand:
            known = ", ".join(self.regions)
            raise PriceError(f"no prices for region {region!r}; the table ({self.as_of}) has: {known}")

    def instance_types(self, region: str) -> list[InstanceType]:
        self._region(region)
        return [INSTANCE_TYPES[name] for name in sorted(self.on_demand[region]) if name in INSTANCE_TYPES]

    def hourly(self, region: str, instance_type: str, market: str) -> float:
        self._region(region)
        if market not in ("spot", "on-demand"):
            raise PriceError(f"unknown market {market!r}: spot or on-demand")
        prices = (self.spot if market == "spot" else self.on_demand)[region]
        if instance_type not in prices or instance_type not in INSTANCE_TYPES:
            known = ", ".join(sorted(prices))
            raise PriceError(f"instance type {instance_type!r} is not in the price table for {region}; known: {known}")
        return prices[instance_type]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PriceTable:
        data = json.loads(text)
        data["notes"] = tuple(data.get("notes", ()))
        return cls(**data)


def _per_region(values: dict[str, float]) -> dict[str, float]:
    return {region: values.get(region, values["default"]) for region in _LARGE_ON_DEMAND}


SHIPPED = PriceTable(
    as_of=AS_OF,
    source=SOURCE,
    on_demand=_shipped_hourly(),
    spot=_shipped_hourly(_TYPICAL_SPOT_FRACTION),
    ebs_gp3_gb_month=_per_region({"default": 0.08, "eu-west-1": 0.088, "eu-central-1": 0.0952}),
    s3_gb_month=_per_region({"default": 0.023, "eu-central-1": 0.0245}),
    s3_put_per_1000=_per_region({"default": 0.005, "eu-central-1": 0.0054}),
    s3_get_per_1000=_per_region({"default": 0.0004, "eu-central-1": 0.00043}),
    notes=("S3 to EC2 in the same region and data into AWS are free; a source outside AWS may bill its egress",),
)


def load_prices(path: Path | None = None) -> PriceTable:
    """The refreshed table at ``path`` if there is one, else the shipped table."""
    if path is not None and Path(path).exists():
        try:
            return PriceTable.from_json(Path(path).read_text())
        except (ValueError, TypeError) as error:
            raise PriceError(f"{path} is not a price table ({error}); delete it to use the shipped one") from None
    return SHIPPED


def refresh(
    session, regions: list[str], base: PriceTable = SHIPPED, instance_types: list[str] | None = None
) -> PriceTable:
    """A table with on-demand prices from the AWS Pricing API and spot medians of the last 7 days.

    ``session`` is a boto3 Session (credentials needed: both APIs are signed). Offline, or without access,
    this fails with a :class:`PriceError` that says so; nothing is half-updated.
    """
    import botocore

    names = instance_types or sorted(INSTANCE_TYPES)
    on_demand = {r: dict(base.on_demand.get(r, {})) for r in base.on_demand}
    spot = {r: dict(base.spot.get(r, {})) for r in base.spot}
    try:
        pricing = session.client("pricing", region_name="us-east-1")  # the API lives in us-east-1 (and ap-south-1)
        for region in regions:
            on_demand.setdefault(region, {})
            spot.setdefault(region, {})
            for name in names:
                on_demand[region][name] = _on_demand_price(pricing, region, name)
            spot[region].update(_spot_medians(session.client("ec2", region_name=region), names))
    except botocore.exceptions.NoCredentialsError:
        raise PriceError("cannot refresh prices: no AWS credentials (the Pricing API signs requests)") from None
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError) as error:
        raise PriceError(f"cannot refresh prices: AWS is unreachable (offline?): {error}") from None
    except botocore.exceptions.ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        raise PriceError(f"cannot refresh prices: AWS refused ({code}): {error}") from None
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    return replace(
        base,
        as_of=today,
        source="AWS Pricing API (on-demand) and DescribeSpotPriceHistory 7-day medians (spot), "
        f"refreshed {today} for {', '.join(regions)}; other prices from the table of {base.as_of}",
        on_demand=on_demand,
        spot=spot,
    )


def _on_demand_price(pricing, region: str, instance_type: str) -> float:
    filters = {
        "instanceType": instance_type,
        "regionCode": region,
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
        "licenseModel": "No License required",
    }
    response = pricing.get_products(
        ServiceCode="AmazonEC2",
        Filters=[{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in filters.items()],
        MaxResults=10,
    )
    prices = []
    for item in response.get("PriceList", []):
        product = json.loads(item) if isinstance(item, str) else item
        for term in product.get("terms", {}).get("OnDemand", {}).values():
            for dimension in term.get("priceDimensions", {}).values():
                usd = float(dimension.get("pricePerUnit", {}).get("USD", 0))
                if usd > 0 and dimension.get("unit") == "Hrs":
                    prices.append(usd)
    if not prices:
        raise PriceError(f"the AWS Pricing API has no Linux on-demand price for {instance_type} in {region}")
    return min(prices)


def _spot_medians(ec2, instance_types: list[str]) -> dict[str, float]:
    start = datetime.now(UTC) - timedelta(days=7)
    seen: dict[str, list[float]] = {}
    paginator = ec2.get_paginator("describe_spot_price_history")
    pages = paginator.paginate(
        InstanceTypes=instance_types, ProductDescriptions=["Linux/UNIX"], StartTime=start
    )  # fmt: skip
    for page in pages:
        for entry in page.get("SpotPriceHistory", []):
            seen.setdefault(entry["InstanceType"], []).append(float(entry["SpotPrice"]))
    return {name: round(statistics.median(values), 5) for name, values in seen.items()}
