"""NeuroConv's YAML conversion specification, validated in full before anything runs, split into sessions.

The file is the one ``neuroconv run_conversion_from_yaml`` reads. Its structure is checked by pydantic models
in NeuroConv's style (``extra="forbid"``: a key NeuroConv would silently ignore, such as ``nwbfile_nam``, is an
error naming the nearest valid key), then against NeuroConv's own JSON schema (the metadata blocks); every
interface name is resolved in ``neuroconv.datainterfaces`` and every session's ``source_data`` checked against
that interface's source schema (all but the existence of paths, which live on the remote and are checked
there). Paths are relative to the source, as for NeuroConv's ``data_folder_path``.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pydantic
import yaml
from pydantic import BaseModel, ConfigDict
from referencing import Registry, Resource

from nwb_cloud.convert.errors import SpecError

PATH_KEYS = ("file_path", "folder_path")
PATHS_KEYS = ("file_paths",)
_SESSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class _NoDatesLoader(yaml.SafeLoader):
    """Dates stay strings, as in NeuroConv's loader, so a spec round-trips through JSON unchanged."""


_NoDatesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class Session:
    """One NWB file to produce: the interfaces it uses, where their data is, and its merged metadata."""

    name: str  # also the output file's stem; unique within the spec
    experiment: str
    interfaces: dict[str, str]  # name in the spec -> NeuroConv interface class name
    source_data: dict
    metadata_layers: tuple[dict, ...]  # global, experiment, session: applied in that order
    conversion_options: dict
    files: tuple[str, ...] = field(default=())  # paths the spec names as files, relative to the source
    folders: tuple[str, ...] = field(default=())

    @property
    def nwbfile_name(self) -> str:
        return f"{self.name}.nwb"

    @property
    def interface_key(self) -> str:
        """The interface classes of this session, as throughput records and estimates key them."""
        return "+".join(sorted(set(self.interfaces.values())))

    def digest(self) -> str:
        """Changes whenever anything that changes the output changes: a finished session is redone then."""
        content = {
            "interfaces": self.interfaces,
            "source_data": self.source_data,
            "metadata": self.metadata_layers,
            "conversion_options": self.conversion_options,
        }
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]

    def source_data_in(self, folder: Path) -> dict:
        """``source_data`` with every path made absolute under the local copy of the source."""
        resolved = copy.deepcopy(self.source_data)
        for arguments in resolved.values():
            for key in PATH_KEYS:
                if key in arguments:
                    arguments[key] = str(Path(folder) / arguments[key])
            for key in PATHS_KEYS:
                if key in arguments:
                    arguments[key] = [str(Path(folder) / p) for p in arguments[key]]
        return resolved


@dataclass(frozen=True)
class ConversionSpec:
    text: str
    origin: str
    sessions: tuple[Session, ...]

    @classmethod
    def load(cls, path: Path) -> ConversionSpec:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise SpecError(f"cannot read conversion spec {path}: {error.strerror}") from None
        return cls.parse(text, origin=str(path))

    @classmethod
    def parse(cls, text: str, origin: str = "<spec>", check_interfaces: bool = True) -> ConversionSpec:
        """Validate and split ``text``. ``check_interfaces=False`` skips resolving the interface classes (and
        importing NeuroConv's interfaces): for a job re-reading a spec that its plan already checked."""
        try:
            document = yaml.load(text, Loader=_NoDatesLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as error:
            raise SpecError(f"{origin} is not valid YAML: {error}") from None
        if not isinstance(document, dict):
            raise SpecError(f"{origin} must be a YAML mapping with 'experiments', got {type(document).__name__}")
        _validate_structure(document, origin)
        _validate_schema(document, origin)
        if "upload_to_dandiset" in document:
            raise SpecError(
                f"{origin}: 'upload_to_dandiset' is not supported here: the destination is an S3 prefix or a "
                "folder; upload it to DANDI with `dandi upload` once the conversion is done"
            )
        sessions = tuple(_sessions(document, origin, check_interfaces))
        if not sessions:
            raise SpecError(f"{origin} lists no sessions")
        return cls(text=text, origin=origin, sessions=sessions)

    def session(self, name: str) -> Session:
        for session in self.sessions:
            if session.name == name:
                return session
        raise SpecError(f"no session {name!r} in {self.origin}; sessions: {', '.join(s.name for s in self.sessions)}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _SessionModel(_Strict):
    nwbfile_name: str | None = None
    source_data: dict[str, dict[str, Any]]
    metadata: dict[str, Any] | None = None
    conversion_options: dict[str, dict[str, Any]] | None = None  # per interface named in source_data


class _ExperimentModel(_Strict):
    sessions: list[_SessionModel]
    metadata: dict[str, Any] | None = None


class _SpecModel(_Strict):
    """The YAML conversion specification, as ``neuroconv run_conversion_from_yaml`` reads it."""

    experiments: dict[str, _ExperimentModel]
    data_interfaces: dict[str, str] | None = None
    metadata: dict[str, Any] | None = None
    conversion_options: dict[str, Any] | None = None  # applied to every interface of every session
    upload_to_dandiset: str | None = None


def _validate_structure(document: dict, origin: str) -> None:
    """The first structural error as one line: where it is, what is wrong, the nearest valid key for a typo."""
    try:
        _SpecModel.model_validate(document)
    except pydantic.ValidationError as error:
        problems = error.errors()
        first = problems[0]
        where = _where(first["loc"])
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        if first["type"] == "extra_forbidden":
            key = str(first["loc"][-1])
            valid = sorted(_fields_at(first["loc"][:-1]))
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f"did you mean {close[0]}?" if close else f"valid keys: {', '.join(valid)}"
            raise SpecError(f"{origin}: unknown key {where}: {hint}{more}") from None
        got = f" (got {type(first['input']).__name__} {first['input']!r})" if first["type"] != "missing" else ""
        message = first["msg"] if first["type"] != "missing" else "a required key is missing"
        raise SpecError(f"{origin}: {where}: {message}{got}{more}") from None


def _fields_at(loc: tuple) -> set[str]:
    """The keys valid at ``loc`` (a pydantic error location): the fields of the model found there."""
    annotation: Any = _SpecModel
    for part in loc:
        annotation = _without_none(annotation)
        if _is_model(annotation):
            annotation = annotation.model_fields[part].annotation
        elif typing.get_origin(annotation) in (dict, list):
            annotation = typing.get_args(annotation)[-1]  # a dict's value, a list's item
        else:
            return set()
    annotation = _without_none(annotation)
    return set(annotation.model_fields) if _is_model(annotation) else set()


def _without_none(annotation):
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def _is_model(annotation) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


@cache
def _schema_and_registry():
    import neuroconv
    from neuroconv.utils import load_dict_from_file

    folder = Path(neuroconv.__file__).parent / "schemas"
    schema = load_dict_from_file(folder / "yaml_conversion_specification_schema.json")
    metadata_schema = load_dict_from_file(folder / "metadata_schema.json")
    registry = Registry().with_resource("metadata_schema.json", Resource.from_contents(metadata_schema))
    return schema, registry


def _validate_schema(document: dict, origin: str) -> None:
    schema, registry = _schema_and_registry()
    validator = jsonschema.Draft7Validator(schema, registry=registry)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        where = _where(error.absolute_path)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise SpecError(f"{origin} fails NeuroConv's specification schema at {where}: {error.message}{more}")


def _where(path) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return text or "the top level"


def _interface_class(class_name: str, origin: str):
    import neuroconv.datainterfaces as interfaces

    found = getattr(interfaces, class_name, None)
    if found is None or not isinstance(found, type):
        known = [n for n in dir(interfaces) if n.endswith("Interface")]
        close = difflib.get_close_matches(class_name, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise SpecError(f"{origin}: {class_name!r} is not a NeuroConv data interface{hint}")
    return found


def _sessions(document: dict, origin: str, check_interfaces: bool = True):
    interfaces = document.get("data_interfaces") or {}
    classes = {
        name: _interface_class(class_name, origin) if check_interfaces else None
        for name, class_name in interfaces.items()
    }
    global_metadata = document.get("metadata") or {}
    global_options = document.get("conversion_options") or {}
    seen: set[str] = set()
    for experiment_name, experiment in document["experiments"].items():
        for index, entry in enumerate(experiment["sessions"]):
            where = f"{origin}: experiments.{experiment_name}.sessions[{index}]"
            name = entry.get("nwbfile_name", f"{experiment_name}-{index + 1}").removesuffix(".nwb")
            if not _SESSION_NAME.match(name):
                raise SpecError(f"{where}: nwbfile_name {name!r} must be letters, digits, '.', '_' or '-'")
            if name in seen:
                raise SpecError(f"{where}: nwbfile_name {name!r} is used by two sessions")
            seen.add(name)
            source_data = entry["source_data"]
            unknown = sorted(set(source_data) - set(classes))
            if unknown:
                raise SpecError(f"{where}: source_data names {unknown}, not in data_interfaces {sorted(classes)}")
            files, folders = [], []
            for interface_name, arguments in source_data.items():
                if classes[interface_name] is not None:
                    _validate_source(classes[interface_name], arguments, f"{where}.source_data.{interface_name}")
                found_files, found_folders = _paths(arguments, f"{where}.source_data.{interface_name}")
                files += found_files
                folders += found_folders
            session_options = entry.get("conversion_options") or {}
            yield Session(
                name=name,
                experiment=experiment_name,
                interfaces={n: interfaces[n] for n in source_data},
                source_data=source_data,
                metadata_layers=(global_metadata, experiment.get("metadata") or {}, entry.get("metadata") or {}),
                conversion_options={
                    n: {**global_options, **session_options.get(n, {})} for n in source_data
                },  # NeuroConv's rule: the session's options win over the global block
                files=tuple(dict.fromkeys(files)),
                folders=tuple(dict.fromkeys(folders)),
            )


def _validate_source(interface_class, arguments, where: str) -> None:
    if not isinstance(arguments, dict):
        raise SpecError(f"{where} must be a mapping of the interface's arguments")
    schema = interface_class.get_source_schema()
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(arguments), key=lambda e: list(e.absolute_path))
    if errors:
        raise SpecError(f"{where} does not fit {interface_class.__name__}: {errors[0].message}")


def _paths(arguments: dict, where: str) -> tuple[list[str], list[str]]:
    files, folders = [], []
    for key, value in arguments.items():
        if key in PATH_KEYS:
            (files if key == "file_path" else folders).append(_relative(value, f"{where}.{key}"))
        elif key in PATHS_KEYS:
            files += [_relative(v, f"{where}.{key}") for v in value]
    return files, folders


def _relative(value, where: str) -> str:
    path = PurePosixPath(str(value))
    if path.is_absolute() or ".." in path.parts or not str(value).strip():
        raise SpecError(f"{where} = {value!r}: paths must be relative to the source, without '..'")
    return path.as_posix()
