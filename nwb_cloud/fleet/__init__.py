"""The suite on a fleet: the benchmark run on real S3 across EC2 instance types, priced first, merged after.

``plan`` prices a grid of instance types (and regions) x suite size x data source from the durations and
traffic of earlier runs; ``submit`` provisions the same tagged, least-privilege AWS Batch resources as a
conversion (:mod:`nwb_cloud.batch`) and submits one benchmark-host job per instance type; each child
(:mod:`nwb_cloud.fleet.child`) measures the ``real`` network profile, runs the asv suite against the store
and pushes its asv results, run info and log to S3; ``collect`` merges them into the local results tree as
one asv machine per instance type and region. The local executor runs the same children as processes.
"""
