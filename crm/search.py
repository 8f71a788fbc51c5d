"""Full-text search helpers over the generated `search` columns (config 'simple')."""

import re

from django.contrib.postgres.search import SearchQuery

_WORD = re.compile(r"\w+", re.UNICODE)


def prefix_search_query(text: str) -> SearchQuery | None:
    """`smi joh` -> `smi:* & joh:*` in the 'simple' configuration (the one the column uses).

    Only word characters reach to_tsquery, so no input can make it raise a syntax error.
    """
    words = _WORD.findall(text.lower())
    if not words:
        return None
    return SearchQuery(" & ".join(f"{word}:*" for word in words), search_type="raw", config="simple")
