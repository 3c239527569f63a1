"""Coercion of the loosely typed values the engine sends ("true", "1500")."""

from __future__ import annotations

import math

from shared.errors import ErrorCode, NetError

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def to_bool(value: object, what: str, code: ErrorCode = ErrorCode.BAD_PARAMS) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise NetError(code, f"{what}: {value!r} is not a boolean")


def to_int(
    value: object,
    what: str,
    low: int,
    high: int,
    code: ErrorCode = ErrorCode.BAD_PARAMS,
) -> int:
    if isinstance(value, bool):
        raise NetError(code, f"{what}: {value!r} is not an integer")
    # isdecimal, not isdigit: "²" is a digit that int() refuses
    if isinstance(value, str) and value.strip().isdecimal() and len(value) < 12:
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():  # 1500.0: the agent's int() takes it
        value = int(value)
    if not isinstance(value, int):
        raise NetError(code, f"{what}: {value!r} is not an integer")
    if not low <= value <= high:
        raise NetError(code, f"{what}: {value} is out of range {low}..{high}")
    return value


def to_truncated_int(
    value: object, what: str, low: int, high: int, code: ErrorCode = ErrorCode.BAD_PARAMS
) -> int:
    """``to_int``, and a number with a fraction cut to its integer part, as
    the production agent's ``int()`` does (its own tests send a
    ``connectivityTimeout`` of 0.1)."""
    if isinstance(value, float) and math.isfinite(value) and low - 1 < value < high + 1:
        value = int(value)
    return to_int(value, what, low, high, code)


def to_str(
    value: object, what: str, code: ErrorCode = ErrorCode.BAD_PARAMS, limit: int = 256
) -> str:
    if not isinstance(value, str):
        raise NetError(code, f"{what}: {value!r} is not a string")
    if len(value) > limit or not value.isprintable():
        raise NetError(code, f"{what}: {value[:40]!r} is not a valid value")
    return value


def to_dict(value: object, what: str) -> dict:
    if not isinstance(value, dict):
        raise NetError(ErrorCode.BAD_PARAMS, f"{what} must be an object, got {value!r}")
    return value
