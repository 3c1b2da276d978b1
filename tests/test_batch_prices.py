"""The dated price table, its refresh from AWS's APIs (stubbed), and its failures offline."""

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import ANY, Stubber

from nwb_cloud.batch.errors import PriceError
from nwb_cloud.batch.prices import INSTANCE_TYPES, SHIPPED, PriceTable, load_prices, refresh


def test_shipped_table_is_complete_and_consistent():
    assert SHIPPED.as_of and SHIPPED.source
    for region in SHIPPED.regions:
        assert set(SHIPPED.on_demand[region]) == set(INSTANCE_TYPES) == set(SHIPPED.spot[region])
        for name, itype in INSTANCE_TYPES.items():
            assert 0 < SHIPPED.spot[region][name] < SHIPPED.on_demand[region][name]
            large = SHIPPED.on_demand[region][f"{itype.family}.large"]
            assert SHIPPED.on_demand[region][name] == pytest.approx(large * itype.vcpus / 2)  # linear in size
        for table in (SHIPPED.ebs_gp3_gb_month, SHIPPED.s3_gb_month, SHIPPED.s3_put_per_1000, SHIPPED.s3_get_per_1000):
            assert table[region] > 0
    assert SHIPPED.hourly("us-east-1", "m6i.large", "on-demand") == 0.096
    assert INSTANCE_TYPES["r6i.xlarge"].memory_gib == 32 and INSTANCE_TYPES["c7i.4xlarge"].vcpus == 16


def test_unknown_instance_type_region_or_market_is_named():
    with pytest.raises(PriceError, match="'x9.huge' is not in the price table for us-east-1; known: c6i.2xlarge"):
        SHIPPED.hourly("us-east-1", "x9.huge", "spot")
    with pytest.raises(PriceError, match="no prices for region 'mars-1'.*us-east-1"):
        SHIPPED.hourly("mars-1", "m6i.large", "spot")
    with pytest.raises(PriceError, match="unknown market 'reserved'"):
        SHIPPED.hourly("us-east-1", "m6i.large", "reserved")


def test_saved_table_round_trips_and_a_broken_one_is_refused(tmp_path):
    assert load_prices(tmp_path / "missing.json") is SHIPPED
    path = tmp_path / "prices.json"
    path.write_text(SHIPPED.to_json())
    assert load_prices(path) == SHIPPED
    path.write_text("{not json")
    with pytest.raises(PriceError, match="is not a price table"):
        load_prices(path)


class _Session:
    """A boto3 session whose clients are the stubbed ones given."""

    def __init__(self, clients):
        self.clients = clients

    def client(self, service, region_name=None):
        return self.clients[service]


def _product(usd: str) -> str:
    dimension = {"unit": "Hrs", "pricePerUnit": {"USD": usd}}
    return json.dumps({"terms": {"OnDemand": {"SKU.TERM": {"priceDimensions": {"SKU.TERM.DIM": dimension}}}}})


def test_refresh_reads_the_pricing_api_and_spot_medians():
    pricing = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    ec2 = boto3.client("ec2", region_name="eu-west-1", aws_access_key_id="a", aws_secret_access_key="b")
    with Stubber(pricing) as pricing_stub, Stubber(ec2) as ec2_stub:
        for price in ("0.2000000000", "0.4000000000"):
            pricing_stub.add_response(
                "get_products", {"PriceList": [_product(price), _product("0.0000000000")]},
                {"ServiceCode": "AmazonEC2", "Filters": ANY, "MaxResults": 10},
            )  # fmt: skip
        history = [
            {"InstanceType": name, "SpotPrice": price, "AvailabilityZone": zone, "Timestamp": datetime.now(UTC)}
            for name, prices in (("m6i.large", ("0.05", "0.07", "0.06")), ("m6i.xlarge", ("0.10", "0.14")))
            for price, zone in zip(prices, ("eu-west-1a", "eu-west-1b", "eu-west-1c"))
        ]
        ec2_stub.add_response("describe_spot_price_history", {"SpotPriceHistory": history})
        table = refresh(
            _Session({"pricing": pricing, "ec2": ec2}), ["eu-west-1"], instance_types=["m6i.large", "m6i.xlarge"]
        )
    assert table.on_demand["eu-west-1"]["m6i.large"] == 0.2 and table.on_demand["eu-west-1"]["m6i.xlarge"] == 0.4
    assert table.spot["eu-west-1"]["m6i.large"] == 0.06  # median of the zones' prices
    assert table.spot["eu-west-1"]["m6i.xlarge"] == pytest.approx(0.12)
    assert table.on_demand["eu-west-1"]["r6i.large"] == SHIPPED.on_demand["eu-west-1"]["r6i.large"]  # not asked
    assert table.as_of == datetime.now(UTC).strftime("%Y-%m-%d") and "Pricing API" in table.source
    assert PriceTable.from_json(table.to_json()) == table


def test_refresh_fails_clearly_offline_or_without_credentials(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    session = boto3.session.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1")
    with pytest.raises(PriceError, match=r"AWS is unreachable \(offline\?\)"):
        refresh(session, ["us-east-1"], instance_types=["m6i.large"])
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(PriceError, match="no AWS credentials"):
        refresh(boto3.session.Session(region_name="us-east-1"), ["us-east-1"], instance_types=["m6i.large"])
