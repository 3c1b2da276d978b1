"""Chunk-shape and codec recommendations, fitted to the measured study, that plug into NeuroConv.

* :func:`recommend` (``nwb-cloud recommend``): the cheapest chunk shape and codec for a dataset, a workload
  mix and a network profile, as a :class:`Recommendation` that sets NeuroConv's dataset configuration;
* :mod:`~nwb_cloud.recommend.model`, :func:`fit`: the cost model and its fit to the measured matrix
  (:func:`load_measurements`), with residuals per cell;
* :func:`check_recommendations`: the model's pick among measured layouts against the measured best;
* :func:`rewrite` (``nwb-cloud rewrite``): an existing file rewritten into a layout, verified object by object;
* :func:`write_guidance` (``nwb-cloud guidance``): reports/guidance.html for a lab;
* :mod:`~nwb_cloud.recommend.loop` (``nwb-cloud bench --block loop``): the closed loop, each recommendation
  rewritten, uploaded and measured beside the layouts around it on cases the model never saw
  (:mod:`~nwb_cloud.recommend.cases`), and :func:`loop_groups`, its verdicts from the results.
"""

from nwb_cloud.recommend.check import check_recommendations, check_summary
from nwb_cloud.recommend.codecs import CODECS, Codec, codec_name, get_codec
from nwb_cloud.recommend.dataset import DatasetSpec, describe, from_nwb
from nwb_cloud.recommend.errors import (
    BadChunkShape,
    NotEnoughMeasurements,
    OutputExists,
    RecommendError,
    RewriteFailed,
    SeriesNotFound,
    UnknownCodec,
    UnknownWorkloadName,
)
from nwb_cloud.recommend.fit import FitResult, fit
from nwb_cloud.recommend.guidance import write_guidance
from nwb_cloud.recommend.loop_check import loop_groups, loop_summary
from nwb_cloud.recommend.measurements import Measurements
from nwb_cloud.recommend.measurements import load as load_measurements
from nwb_cloud.recommend.model import CostModel, MethodParams, Network, prior_model
from nwb_cloud.recommend.recommendation import MODEL_PATH, Recommendation, default_model, recommend
from nwb_cloud.recommend.rewriting import RewriteReport, rewrite

__all__ = [
    "CODECS",
    "MODEL_PATH",
    "BadChunkShape",
    "Codec",
    "CostModel",
    "DatasetSpec",
    "FitResult",
    "Measurements",
    "MethodParams",
    "Network",
    "NotEnoughMeasurements",
    "OutputExists",
    "Recommendation",
    "RecommendError",
    "RewriteFailed",
    "RewriteReport",
    "SeriesNotFound",
    "UnknownCodec",
    "UnknownWorkloadName",
    "check_recommendations",
    "check_summary",
    "codec_name",
    "default_model",
    "describe",
    "fit",
    "from_nwb",
    "get_codec",
    "load_measurements",
    "loop_groups",
    "loop_summary",
    "prior_model",
    "recommend",
    "rewrite",
    "write_guidance",
]
