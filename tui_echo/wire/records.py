"""What every record is made of: JSON text, client bytes, and typed reads of a decoded record.

The ``read_*`` functions raise ValueError, KeyError or TypeError on a field
that is missing or of the wrong JSON type; so does every decoder of the
codec, and callers catch those three (a console then says the server sent
something it cannot read). Nothing is coerced: ``"3"`` is not a number.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, TypeAlias

from tui_echo.net import Peer, parse_address
from tui_echo.server.events import EVENT_DATA_BYTES
from tui_echo.text import escape_bytes
from tui_echo.times import parse_utc_time, utc_time

Record: TypeAlias = dict[str, object]  # a record to encode
Fields: TypeAlias = Mapping[str, Any]  # a record decoded from JSON


def to_json(record: Record) -> str:
    # ensure_ascii: the line is plain ASCII whatever the client sent.
    return json.dumps(record, ensure_ascii=True, separators=(",", ":"))


def data_fields(data: bytes, size: int) -> Record:
    """A chunk for people: its escaped text (inert, at most EVENT_DATA_BYTES), its full length, whether it was cut."""
    shown_text, shown = escape_bytes(data, EVENT_DATA_BYTES)
    return {"len": size, "data": shown_text, "truncated": shown < size}


def exact_data(data: bytes) -> str:
    """A chunk for programs: its exact bytes (an event holds at most EVENT_DATA_BYTES), base64."""
    return base64.b64encode(data).decode("ascii")


def read_data(record: Fields, name: str = "data_b64") -> bytes:
    return base64.b64decode(read_str(record, name), validate=True)


def _read(record: Fields, name: str, kinds: tuple[type, ...], what: str) -> Any:
    value = record[name]
    if type(value) not in kinds:  # JSON's own types, exactly: true is not a number
        raise TypeError(f'"{name}" must be {what}, not {value!r}')
    return value


def read_int(record: Fields, name: str) -> int:
    value: int = _read(record, name, (int,), "a whole number")
    return value


def read_float(record: Fields, name: str) -> float:
    return float(_read(record, name, (int, float), "a number"))


def read_str(record: Fields, name: str) -> str:
    value: str = _read(record, name, (str,), "a string")
    return value


def read_bool(record: Fields, name: str) -> bool:
    value: bool = _read(record, name, (bool,), "true or false")
    return value


def read_list(record: Fields, name: str) -> list[Any]:
    value: list[Any] = _read(record, name, (list,), "a list")
    return value


def read_int_list(record: Fields, name: str) -> list[int]:
    values = read_list(record, name)
    if any(type(value) is not int for value in values):
        raise TypeError(f'"{name}" must be a list of whole numbers, not {values!r}')
    return values


def read_object(record: Fields, name: str) -> Fields:
    value: Fields = _read(record, name, (dict,), "an object")
    return value


def read_time(record: Fields, name: str = "time") -> float:
    return parse_utc_time(record[name])


def read_peer(record: Fields, name: str = "peer") -> Peer:
    return parse_address(read_str(record, name))


# A field that may be null: JSON null (or no field at all) is None.


def read_optional_int(record: Fields, name: str) -> int | None:
    return None if record.get(name) is None else read_int(record, name)


def read_optional_float(record: Fields, name: str) -> float | None:
    return None if record.get(name) is None else read_float(record, name)


def read_optional_str(record: Fields, name: str) -> str | None:
    return None if record.get(name) is None else read_str(record, name)


def read_optional_time(record: Fields, name: str) -> float | None:
    return None if record.get(name) is None else read_time(record, name)


def optional_time(at: float | None) -> str | None:
    return None if at is None else utc_time(at)


def read_actions(record: Fields) -> tuple[tuple[str, str], ...]:
    """A rule's actions, ``{"label": "{1}"}``, as (name, template) pairs in their order."""
    actions = read_object(record, "actions")
    return tuple((name, read_str(actions, name)) for name in actions)
