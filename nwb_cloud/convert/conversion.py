"""One session through NeuroConv: the converter its spec describes, optionally in a recommended layout.

This is what ``neuroconv run_conversion_from_yaml`` does for one session (same converter class, same metadata
order, same option rule), without its DANDI-specific renaming step, so each session can be run, checked and
retried on its own. A layout (``nwb_cloud.datasets.layouts``) is applied the way NeuroConv documents: the
default backend configuration, modified for the bulk series, passed to ``run_conversion``.
"""

from __future__ import annotations

from pathlib import Path

from nwb_cloud.convert.errors import ConvertError, SpecError
from nwb_cloud.convert.spec import Session
from nwb_cloud.datasets.layouts import BadLayout, Layout

# The neurodata types whose bulk ``data`` a layout's per-modality chunk shape applies to.
MODALITY_OF_TYPE = {"ElectricalSeries": "ecephys", "TwoPhotonSeries": "ophys", "OnePhotonSeries": "ophys"}


def build_converter(session: Session, data_folder: Path):
    """The NeuroConv converter of ``session`` reading its local copy under ``data_folder``."""
    import neuroconv.datainterfaces as interfaces
    from neuroconv import NWBConverter

    classes = {name: getattr(interfaces, class_name) for name, class_name in session.interfaces.items()}
    converter_class = type("SpecConverter", (NWBConverter,), {"data_interface_classes": classes})
    try:
        return converter_class(source_data=session.source_data_in(data_folder))
    except Exception as error:  # interfaces raise anything when a file is not what they read (RuntimeError, ...)
        raise ConvertError(
            f"session {session.name}: NeuroConv cannot read its source data: {type(error).__name__}: {error}"
        ) from error


def session_metadata(session: Session, converter) -> dict:
    from neuroconv.utils import dict_deep_update

    metadata = converter.get_metadata()
    for layer in session.metadata_layers:
        metadata = dict_deep_update(metadata, layer)
    return metadata


def convert_session(session: Session, data_folder: Path, nwbfile_path: Path, layout: Layout | None = None) -> None:
    """Write ``session`` to ``nwbfile_path`` (overwriting it). The caller makes the write atomic."""
    converter = build_converter(session, data_folder)
    metadata = session_metadata(session, converter)
    configuration = None
    if layout is not None:
        nwbfile = converter.create_nwbfile(metadata=metadata, conversion_options=session.conversion_options)
        configuration = converter.get_default_backend_configuration(nwbfile=nwbfile, backend=layout.backend)
        apply_layout(configuration, nwbfile, layout)
    try:
        converter.run_conversion(
            nwbfile_path=str(nwbfile_path),
            metadata=metadata,
            overwrite=True,
            conversion_options=session.conversion_options,
            backend_configuration=configuration,
        )
    except Exception as error:
        if _is_validation_error(error):
            raise SpecError(f"session {session.name}: NeuroConv rejects its metadata or options: {error}") from None
        raise


def apply_layout(configuration, nwbfile, layout: Layout) -> list[str]:
    """Set ``layout``'s chunks and codec on every bulk series it knows; returns the locations changed."""
    from nwb_cloud.datasets.modalities import get_modality
    from nwb_cloud.datasets.nwbfiles import buffer_shape_for

    changed = []
    for location, dataset in configuration.dataset_configurations.items():
        owner = nwbfile.objects.get(dataset.object_id)
        modality_name = MODALITY_OF_TYPE.get(type(owner).__name__) if owner is not None else None
        if modality_name is None or not location.endswith("/data"):
            continue
        modality = get_modality(modality_name)
        chunk_shape = layout.chunk_shape(modality, dataset.full_shape, dataset.dtype)
        dataset.chunk_shape = chunk_shape
        dataset.buffer_shape = buffer_shape_for(dataset.full_shape, dataset.dtype, chunk_shape)
        dataset.compressors = list(layout.compressors) if layout.compressors else None
        dataset.compressor_options = list(layout.compressor_options) if layout.compressor_options else None
        changed.append(location)
    try:
        configuration.model_validate(configuration.model_dump())
    except ValueError as error:
        raise BadLayout(f"layout {layout.name!r} cannot be applied by NeuroConv: {error}") from None
    return changed


def _is_validation_error(error: Exception) -> bool:
    import jsonschema

    return isinstance(error, jsonschema.ValidationError)
