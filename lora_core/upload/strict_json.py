"""JSON from an upload, refused before parsing if it nests too deep, and refused if a key repeats."""
from __future__ import annotations

import json

from ..echo import shown
from .limits import JSON_MAX_DEPTH


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _json_depth_over(text: str, limit: int) -> bool:
    """Whether lists and objects nest deeper than ``limit``, outside strings (json.loads recurses per level)."""
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def parse_json(blob: bytes, what: str):
    """JSON from the file, refused before parsing if it nests too deep, and refused if a key repeats."""
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{what} is not valid JSON (it is not UTF-8 text)") from None
    if _json_depth_over(text, JSON_MAX_DEPTH):
        raise ValueError(f"{what} nests lists or objects more than {JSON_MAX_DEPTH} levels deep; "
                         f"it is not an adapter's JSON")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        raise ValueError(f"{what} has the key {shown(exc.args[0])} twice") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise ValueError(f"{what} is not valid JSON ({type(exc).__name__})") from None
