"""Estimates from throughput records, the instance choice they drive, and plans that create nothing."""

import pytest

from nwb_cloud.batch.errors import BatchError, PriceError
from nwb_cloud.batch.estimate import GIB, PRIOR_MEMORY_BYTES, Estimator
from nwb_cloud.batch.plan import job_share, make_plan, makespan
from nwb_cloud.batch.prices import SHIPPED
from nwb_cloud.convert.errors import SourceError
from nwb_cloud.convert.places import LocalPlace
from nwb_cloud.convert.rclone import Rclone
from nwb_cloud.convert.records import Record
from nwb_cloud.convert.sources import conversion_spec, write_session
from nwb_cloud.convert.spec import ConversionSpec

SGLX = "SpikeGLXRecordingInterface"


def _record(step="convert", nbytes=100e6, seconds=10.0, cores=2, instance="c6i.large", memory=GIB, interface=SGLX):
    return Record(step, interface, int(nbytes), cores, seconds, instance_type=instance, peak_memory=int(memory))


def test_without_records_the_prior_is_used_and_said():
    estimate = Estimator([]).step("convert", SGLX, 150_000_000, 4, "c6i.xlarge")
    assert estimate.seconds == pytest.approx(30 + 10)  # 30 s start-up + 150 MB at 15 MB/s
    assert estimate.basis.startswith("no records")
    assert Estimator([]).memory_bytes(SGLX)[0] == PRIOR_MEMORY_BYTES


def test_two_sizes_fit_overhead_and_rate():
    records = [_record(nbytes=100e6, seconds=12), _record(nbytes=300e6, seconds=32)]
    estimate = Estimator(records).step("convert", SGLX, 500_000_000, 2, "c6i.large")
    assert estimate.seconds == pytest.approx(52)  # 2 s + 10 MB/s
    assert "2.0 s + 10.0 MB/s (fit)" in estimate.basis and "on c6i.large" in estimate.basis


def test_one_size_scales_in_proportion_and_prefers_the_same_machine():
    records = [_record(seconds=10, instance="local"), _record(seconds=20, instance="c6i.large")]
    assert Estimator(records).step("convert", SGLX, 200_000_000, 2, "c6i.large").seconds == pytest.approx(40)
    other = Estimator(records).step("convert", SGLX, 200_000_000, 2, "m6i.large")
    assert other.seconds == pytest.approx(30) and "on other machines" in other.basis  # median of both


def test_unmeasured_cores_get_no_speed_up_and_fewer_cores_are_slower():
    records = [_record(cores=2, seconds=10)]
    estimator = Estimator(records)
    assert estimator.step("convert", SGLX, 100_000_000, 8, "c6i.large").seconds == pytest.approx(10)
    records.append(_record(cores=4, seconds=4))
    assert Estimator(records).step("convert", SGLX, 100_000_000, 1, "c6i.large").seconds == pytest.approx(20)
    assert Estimator(records).step("convert", SGLX, 100_000_000, 8, "c6i.large").seconds == pytest.approx(4)


def test_memory_need_and_output_ratio_come_from_records():
    records = [_record(memory=2 * GIB), Record("convert", SGLX, 100, 2, 1.0, output_bytes=60)]
    need, basis = Estimator(records).memory_bytes(SGLX)
    assert need == 4 * GIB and "peak 2.00 GiB measured" in basis
    assert Estimator(records).output_ratio(SGLX) == pytest.approx(0.6)


def test_makespan_of_chains_on_slots():
    assert makespan([5, 3, 3, 1], 1) == 12
    assert makespan([5, 3, 3, 1], 2) == 6
    assert makespan([5, 3], 8) == 5
    assert makespan([], 4) == 0


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("plan-source")
    raws = [write_session(root, "ephys-1", SGLX), write_session(root, "ophys-1", "TiffImagingInterface")]
    return root, ConversionSpec.parse(conversion_spec(raws)), raws


def _plan(source, tmp_path, records=(), **kwargs):
    root, spec, _ = source
    return make_plan(spec, str(root), LocalPlace(tmp_path / "dest"), Rclone(), list(records), SHIPPED, **kwargs)


def test_plan_lists_sessions_chooses_the_cheapest_fitting_instance_and_costs_everything(source, tmp_path):
    _, _, raws = source
    plan = _plan(source, tmp_path)
    assert [(s.name, s.bytes) for s in plan.sessions] == [(r.name, r.nbytes) for r in raws]
    assert (
        plan.machine.instance_type == "m6i.large"
    )  # 4 GiB prior: c6i.large (4 GiB) is too small once the OS has its share
    assert plan.cost.compute > 0 and plan.cost.ebs > 0 and plan.cost.s3_requests > 0 and plan.cost.total > 0
    assert plan.alternatives and all(total >= plan.cost.total for _, total in plan.alternatives)
    assert any("as of 2026-11-01" in a for a in plan.assumptions)
    assert any("ephys-1 convert" in a and "no records" in a for a in plan.assumptions)
    assert plan.to_dict()["cost"]["total"] == plan.cost.total
    assert not (tmp_path / "dest").exists()  # a plan writes nothing, not even the destination's folder


def test_records_showing_small_memory_and_core_scaling_change_the_choice(source, tmp_path):
    _, _, raws = source
    # conversions long enough that the instance's boot (billed too) does not decide
    small = [_record(nbytes=raws[0].nbytes, memory=0.5 * GIB, cores=2, seconds=4000)]
    small += [_record(interface="TiffImagingInterface", nbytes=raws[1].nbytes, memory=0.5 * GIB, seconds=4000)]
    assert _plan(source, tmp_path, small).machine.instance_type == "c6i.large"  # 1.75 GiB need: cheapest fits
    scaling = small + [
        _record(nbytes=raws[0].nbytes, memory=0.5 * GIB, cores=16, seconds=200, instance="c6i.4xlarge"),
        _record(interface="TiffImagingInterface", nbytes=raws[1].nbytes, memory=0.5 * GIB, cores=16, seconds=200),
    ]
    plan = _plan(source, tmp_path, scaling)
    assert plan.machine.vcpus == 16  # 20x faster for 8x the price: the big instance is now the cheaper run
    assert plan.cost.total < _plan(source, tmp_path, small).cost.total


def test_errors_come_before_anything_is_looked_at(source, tmp_path):
    with pytest.raises(PriceError, match="'x9.huge' is not in the price table"):
        _plan(source, tmp_path, instance_type="x9.huge")
    with pytest.raises(PriceError, match="no prices for region 'mars-1'"):
        _plan(source, tmp_path, region="mars-1")
    with pytest.raises(
        PriceError, match=r"c6i.large has 4 GiB, too little for the 4.0 GiB a conversion needs \(no records"
    ):
        _plan(source, tmp_path, instance_type="c6i.large")
    with pytest.raises(BatchError, match="unknown executor"):
        _plan(source, tmp_path, executor="kubernetes")
    assert not (tmp_path / "dest").exists()
    root, spec, _ = source
    with pytest.raises(SourceError, match="does not exist"):
        make_plan(spec, str(root / "nowhere"), LocalPlace(tmp_path / "d2"), Rclone(), [], SHIPPED)


def test_finished_sessions_are_not_planned_again(source, tmp_path):
    from nwb_cloud.convert.pipeline import survey
    from nwb_cloud.convert.steps import DONE_FOLDER

    root, spec, raws = source
    destination = LocalPlace(tmp_path / "dest")
    session = spec.sessions[1]
    (tmp_path / "dest" / session.nwbfile_name).parent.mkdir(parents=True)
    (tmp_path / "dest" / session.nwbfile_name).write_bytes(b"x" * 7)
    fingerprint = survey(Rclone(), str(root), spec)[1].fingerprint
    record = {"fingerprint": fingerprint.to_dict(), "digests": {"size": 7}}
    destination.write_json(f"{DONE_FOLDER}/{session.name}.json", record)
    plan = make_plan(spec, str(root), destination, Rclone(), [], SHIPPED, executor="local")
    assert [s.name for s in plan.sessions] == ["ephys-1"] and plan.finished == ("ophys-1",)
    assert plan.machine.instance_type == "local" and plan.cost.total == 0
    relaid = make_plan(
        spec, str(root), destination, Rclone(), [], SHIPPED, executor="local", layout="workload-friendly"
    )
    assert [s.name for s in relaid.sessions] == ["ephys-1", "ophys-1"]
    why = "ophys-1: converted again: the layout changed (NeuroConv default -> workload-friendly)"
    assert why in relaid.assumptions


def test_batchs_fixed_costs_are_separate_lines_with_dated_sources_and_counted(source, tmp_path):
    """Instance boot, image pull and queue wait: what Batch costs before a job does any work (a local submit took
    15.9 s against a 5.7 s estimate that had none of them), each a line of the plan with its source."""
    from rich.console import Console

    from nwb_cloud.batch.fixed_costs import AWS_AS_OF
    from nwb_cloud.batch.render import render_plan

    plan = _plan(source, tmp_path)
    costs = {cost.name: cost for cost in plan.fixed_costs}
    assert set(costs) == {"instance boot", "image pull", "queue wait"}
    for cost in costs.values():
        assert (
            cost.seconds > 0
            and f"assumed as of {AWS_AS_OF}" in cost.source
            and "https://docs.aws.amazon.com" in (cost.source)
        )
    waits = costs["queue wait"].seconds * 3  # each of a session's three jobs waits once
    boot = costs["instance boot"].seconds + costs["image pull"].seconds
    assert plan.parallel >= len(plan.sessions)  # the sessions run at once, each on an instance it boots
    longest = max(sum(step.seconds for step in s.steps.values()) + waits for s in plan.sessions)
    assert plan.wall_seconds == pytest.approx(longest + boot)
    steps = sum(e.seconds / 3600 * job_share(name, plan.machine) for s in plan.sessions for name, e in s.steps.items())
    booted = len(plan.sessions) * boot / 3600  # instances are billed while they boot and pull the image
    assert plan.cost.compute == pytest.approx((steps + booted) * plan.machine.hourly)
    console = Console(record=True, width=400)
    console.print(render_plan(plan))
    text = console.export_text()
    for cost in costs.values():
        assert f"{cost.name}: {cost.seconds:.1f} s per {cost.per} (assumed as of {AWS_AS_OF}" in text
    assert plan.to_dict()["fixed_costs"][0]["name"] == "instance boot"
