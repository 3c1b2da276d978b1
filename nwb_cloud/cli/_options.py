"""What every option of every command accepts: checked while the command line is parsed, before any work.

Each :class:`Value` is an argparse ``type``: it turns the text into a value or refuses it with one line that
says what was wrong and shows a valid example; :func:`add` puts that example into the option's help. A value
that can only be checked against the package's registries (a read method, a layout) is checked here too,
importing the registry only when such an option is given, so ``nwb-cloud`` itself still starts fast.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path


class OneLineParser(argparse.ArgumentParser):
    """argparse, with its errors as one line (the usage is one ``--help`` away) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class Value:
    """One kind of option value: ``parse(text)`` returns it or raises ValueError with the reason."""

    def __init__(self, name: str, parse: Callable[[str], object], example: str, malformed: tuple[str, ...]):
        self.__name__ = name  # argparse names the type in its messages
        self.parse = parse
        self.example = example  # a valid value, shown in the help
        self.malformed = malformed  # values it must refuse (the bad-input sweep gives each of them)

    def __call__(self, text: str):
        try:
            return self.parse(text)
        except (ValueError, TypeError, OSError) as error:
            reason = str(error) or f"not a valid {self.__name__}"
            raise argparse.ArgumentTypeError(f"{text!r}: {reason} (e.g. {self.example})") from None

    def __repr__(self) -> str:
        return self.__name__


def add(parser, *names: str, value: Value | None = None, help: str, **kwargs) -> argparse.Action:
    """``parser.add_argument`` with the value's check and an example in the help."""
    if value is not None:
        kwargs["type"] = value
        flag = names[0] if names[0].startswith("-") else ""
        help = f"{help} (e.g. {flag + ' ' if flag else ''}{value.example})"
    elif kwargs.get("choices"):
        help = f"{help} (one of: {', '.join(map(str, kwargs['choices']))})"
    return parser.add_argument(*names, help=help, **kwargs)


# --- numbers ---------------------------------------------------------------------------------------------


def integer(low: int, high: int | None = None, example: int | None = None) -> Value:
    def parse(text: str) -> int:
        value = int(text)
        if value < low or (high is not None and value > high):
            raise ValueError(f"must be {low} or more" if high is None else f"must be {low}-{high}")
        return value

    too_small = str(low - 1)
    return Value("integer", parse, str(example if example is not None else low), ("x", "1.5", too_small))


def number(low: float, high: float | None = None, example: float | None = None, above: bool = False) -> Value:
    """A finite float ``>= low`` (``> low`` with ``above``), at most ``high``."""

    def parse(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        if value < low or (above and value == low) or (high is not None and value > high):
            bound = f"more than {low:g}" if above else f"{low:g} or more"
            raise ValueError(f"must be {bound}" + (f" and at most {high:g}" if high is not None else ""))
        return value

    return Value("number", parse, f"{example if example is not None else low:g}", ("x", "nan", str(low - 1)))


# --- places and names ------------------------------------------------------------------------------------


def _existing_file(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_file():
        raise ValueError("no such file" if not path.exists() else "not a file")
    return path


def _folder(text: str) -> Path:
    """A folder that exists or can be made (nothing on the way is a file); nothing is made here."""
    if not text.strip():
        raise ValueError("empty")
    path = Path(text).expanduser()
    for existing in (path, *path.parents):
        if existing.exists():
            if not existing.is_dir():
                raise ValueError(f"{existing} is a file, not a folder")
            break
    return path


def _output_file(text: str) -> Path:
    """A file that exists or can be written (its folder exists or can be made); it is not written here."""
    path = Path(text).expanduser()
    if not text.strip() or path.is_dir():
        raise ValueError("a folder, not a file" if text.strip() else "empty")
    _folder(str(path.parent))
    return path


def _url(text: str) -> str:
    if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+(:\d{1,5})?/?", text):
        raise ValueError("not an http(s)://host[:port] URL")
    return text.rstrip("/")


def _s3_url(text: str) -> str:
    bucket, _, key = text.removeprefix("s3://").partition("/")
    if not text.startswith("s3://") or not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", bucket) or not key:
        raise ValueError("not an s3://bucket/key URL")
    return text


def _s3_prefix(text: str) -> str:
    bucket = text.removeprefix("s3://").partition("/")[0]
    if not text.startswith("s3://") or not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", bucket):
        raise ValueError("not an s3://bucket/prefix")
    return text


def _place(text: str) -> str:
    """An S3 prefix or a folder."""
    if text.startswith("s3://"):
        return _s3_prefix(text)
    if "://" in text:
        raise ValueError("only s3:// prefixes and folders")
    _folder(text)
    return text


def _rclone_path(text: str) -> str:
    if not text.strip() or any(c in text for c in "\n\r\0"):
        raise ValueError("not an rclone path")
    return text


def _pattern(pattern: str, what: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not re.fullmatch(pattern, text):
            raise ValueError(f"not {what}")
        return text

    return parse


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError("not KEY=VALUE")
    return key, value


def _regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as error:
        raise ValueError(f"not a regular expression ({error})") from None
    if not text:
        raise ValueError("empty")
    return text


def _aws_profile(text: str) -> str:
    import botocore.session

    known = botocore.session.Session().available_profiles
    if text not in known:
        raise ValueError(f"no such AWS profile in the AWS config files (known: {', '.join(known) or 'none'})")
    return text


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError("not a comma-separated list of integers") from None
    if not values or any(v < 1 for v in values):
        raise ValueError("every size must be 1 or more")
    return values


def _numeric_dtype(text: str) -> str:
    import numpy as np

    dtype = np.dtype(text)  # TypeError for what numpy does not know
    if dtype.kind not in "iuf":
        raise ValueError(f"{dtype} is not a numeric dtype (integers or floats: uint16, int16, float32, ...)")
    return dtype.name


def _registry(kind: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        known = _registered(kind)
        if text not in known:
            import difflib

            close = difflib.get_close_matches(text, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ValueError(f"unknown {kind}{hint} (known: {', '.join(known)})")
        return text

    return parse


def _registered(kind: str) -> list[str]:
    if kind == "read method":
        from nwb_cloud.access import METHODS

        return list(METHODS)
    if kind == "workload":
        from nwb_cloud.workloads import WORKLOADS

        return list(WORKLOADS)
    if kind == "network profile":
        from nwb_cloud.cloud.profiles import PROFILES

        return list(PROFILES)
    if kind == "layout":
        from nwb_cloud.datasets.layouts import LAYOUTS

        return list(LAYOUTS)
    if kind == "instance type":
        from nwb_cloud.batch.prices import INSTANCE_TYPES

        return list(INSTANCE_TYPES)
    raise KeyError(kind)


def _weighted_workload(text: str) -> tuple[str, float]:
    name, sep, weight = text.partition("=")
    _registry("workload")(name)
    value = float(weight) if sep else 1.0
    if not math.isfinite(value) or value <= 0:
        raise ValueError("the weight must be a number above 0")
    return text


def _csv(item: Callable[[str], object]) -> Callable[[str], list]:
    def parse(text: str) -> list:
        items = [part.strip() for part in text.split(",")]
        if not all(items):
            raise ValueError("an empty item")
        return [item(part) for part in items]

    return parse


def existing_file(example: str) -> Value:
    """A file that exists; ``example`` names the kind of file the argument wants (its help and its errors)."""
    return Value("file", _existing_file, example, (f"/no/such/{example}",))


EXISTING_FILE = existing_file("spec.yml")  # a NeuroConv YAML spec, the most common file argument
FOLDER = Value("folder", _folder, "/data/nwb-cloud", (sys.executable + "/inside-a-file",))
OUTPUT_FILE = Value("file", _output_file, "out.nwb", (sys.executable + "/inside-a-file",))
URL = Value("URL", _url, "http://127.0.0.1:9000", ("not a url", "ftp://host"))
S3_URL = Value("S3 URL", _s3_url, "s3://bucket/session.nwb", ("bucket/key", "s3://Bad_Bucket/k"))
S3_PREFIX = Value("S3 prefix", _s3_prefix, "s3://bucket/nwb", ("bucket/prefix", "s3://Bad_Bucket/x"))
PLACE = Value("place", _place, "s3://bucket/nwb", ("http://host/x", sys.executable + "/inside-a-file"))
RCLONE_PATH = Value("rclone path", _rclone_path, "gdrive:lab/data", ("", "a\nb"))
REGION = Value("region", _pattern(r"[a-z]{2}(-gov)?-[a-z]+-\d{1,2}", "an AWS region"), "us-east-2", ("mars", ""))
SESSION = Value("session", _pattern(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", "a session name"), "ephys-1", ("../x",))
_DEPLOYMENT = _pattern(r"[A-Za-z][A-Za-z0-9-]{0,29}", "a letter, then letters, digits or '-' (30 at most)")
DEPLOYMENT = Value("name", _DEPLOYMENT, "nwb-cloud", ("1bad", "has space"))
IMAGE = Value("image", _pattern(r"[a-z0-9][\w.\-/:@]*", "a container image reference"),
              "123456789012.dkr.ecr.us-east-1.amazonaws.com/nwb-cloud-convert:0.1.0", ("", "Bad Image"))  # fmt: skip
IDS = Value("ids", _csv(_pattern(r"[a-z]+-[0-9a-f]+", "an AWS id")), "subnet-0a1b2c,subnet-3d4e5f", ("", "x,,y"))
KEY_VALUE = Value("KEY=VALUE", _key_value, "project=lab-42", ("novalue", "=x"))
REGEX = Value("regular expression", _regex, "OphysPatch", ("(", ""))
AWS_PROFILE = Value("AWS profile", _aws_profile, "lab", ("no-such-profile-here",))
SHAPE = Value("shape", _ints, "9000,512,512", ("9000,x", "0,512", ""))
DTYPE = Value("dtype", _numeric_dtype, "uint16", ("U10", "object", "nope"))
METHOD = Value("read method", _registry("read method"), "remfile", ("remfle",))
WORKLOAD = Value("workload", _registry("workload"), "ophys_patch", ("ophys_pach",))
WEIGHTED_WORKLOAD = Value("workload", _weighted_workload, "ophys_patch=0.8", ("ophys_pach=1", "ophys_patch=-1"))
PROFILE = Value("network profile", _registry("network profile"), "in-region", ("in_region",))
LAYOUT = Value("layout", _registry("layout"), "workload-friendly", ("workload-friendy",))
INSTANCE_TYPE = Value("instance type", _registry("instance type"), "c6i.large", ("c6i.huge",))
SERIES = Value("series", _pattern(r"[A-Za-z0-9_./-]+", "a path in the file"), "acquisition/TwoPhotonSeries", ("",))
NAMES = Value("names", _csv(_pattern(r"[\w.\-]+", "a name")), "patch,electrode", ("", "a,,b"))
NAMES_ONE = Value("name", _pattern(r"[\w.\-+]+", "a name (letters, digits, '.', '_', '-', '+')"), "zstd", ("", "a b"))
MEGABYTES = Value("MB", lambda text: int(number(0, above=True).parse(text) * 1e6), "1000", ("x", "0", "-5", "inf"))


def as_text(value: Value) -> Value:
    """``value``'s check, keeping the text as given (for handlers that split or parse it themselves)."""

    def parse(text: str) -> str:
        value.parse(text)
        return text

    return Value(value.__name__, parse, value.example, value.malformed)


def listed(value: Value) -> Value:
    """A comma-separated list of ``value``s, kept as text."""
    return Value(value.__name__ + "s", lambda text: _csv(value.parse)(text) and text, value.example,
                 ("", f"{value.example},,{value.example}", *value.malformed))  # fmt: skip


def _bucket_in_region(text: str) -> str:
    region, sep, url = text.rpartition("=")
    if sep:
        REGION.parse(region)
    return _s3_prefix(url)


INSTANCE_NAME = Value("instance type", _pattern(r"[a-z][a-z0-9-]*\.[a-z0-9]+", "an EC2 instance type"), "c7i.large",
                      ("c7i", "C7I.LARGE"))  # fmt: skip
REGIONAL_BUCKET = Value(
    "[REGION=]S3 prefix", _bucket_in_region, "us-east-2=s3://bucket/nwb-cloud", ("bucket", "x=s3://b/p")
)


def _object_url(text: str) -> str:
    if text.startswith(("http://", "https://")):
        if not re.fullmatch(r"https?://[^\s/]+/\S+", text):
            raise ValueError("not an http(s)://host/path URL")
        return text
    return _s3_url(text)


OBJECT_URL = Value("object URL", _object_url, "s3://bucket/session.nwb", ("bucket/key", "https://host-only"))


def _index_target(text: str) -> str:
    if text.startswith("s3://"):
        return _s3_url(text)
    if not Path(text).expanduser().exists():
        raise ValueError("neither an s3://bucket/key URL nor an existing index file or folder")
    return text


INDEX_TARGET = Value("index", _index_target, "s3://bucket/session.nwb", ("/no/such/index.refs.json", "s3://B_/k"))
