"""Named SQL queries, loaded once from `.sql` files (procrastinate's style).

A file holds blocks that start with `-- name: <query_name>`; parameters are `%(param)s`.
No SQL is assembled at run time.
"""

from __future__ import annotations

import re
from pathlib import Path

_HEADER = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def load_queries(path: Path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{path.name}: query {name!r} defined twice")
        queries[name] = body.strip()
    return queries
