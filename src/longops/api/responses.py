"""The API's JSON response: compact UTF-8 JSON as Starlette writes it, made by orjson when it
is installed (several times faster on an operation's representation; floats may be spelled
differently, e.g. ``1e16`` for ``1e+16``, the same numbers).

Example::

    return JSONResponse({"operations": [...]}, headers={"Cache-Control": "no-store"})
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse as _StarletteJSON

try:
    import orjson
except ImportError:  # pragma: no cover - the fallback is Starlette's own encoder
    orjson = None  # type: ignore[assignment]

__all__ = ["JSONResponse"]


class JSONResponse(_StarletteJSON):
    def render(self, content: Any) -> bytes:
        if orjson is not None:
            try:
                return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
            except orjson.JSONEncodeError:
                pass  # what orjson will not write (an int past 64 bits): Starlette decides
        return super().render(content)
