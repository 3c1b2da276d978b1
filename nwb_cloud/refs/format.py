"""The names the index format defines, in one place (the format is written down in ``docs/index-format.md``)."""

# bump when the layout changes: a cached or published index of another format is rebuilt, never misread
INDEX_FORMAT = "nwb-cloud-refs/2"
KNOWN_FORMATS = (INDEX_FORMAT,)
URL_TEMPLATE = "{{u}}"  # chunk URLs are a template: moving the asset rewrites one value, not every ref
METADATA_KEYS = (".zarray", ".zattrs", ".zgroup")
SPEC_LOC_ATTR = ".specloc"  # root attribute: path of the cached specifications (hdmf-zarr's)
TYPES_KEY = "nwb_cloud_types"  # .zattrs key: {attribute: type tag} (nwb_cloud.refs.attrs)
SKIPPED_FILTERS = "nwb_cloud_skipped_filters"  # .zarray key: {chunk key: [positions in "filters" not applied]}
RESERVED_ATTRS = ("zarr_dtype", "zarr_link", TYPES_KEY)
