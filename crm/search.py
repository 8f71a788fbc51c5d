"""Full-text search helpers over the generated `search` columns (config 'simple')."""

import re

from django.contrib.postgres.search import SearchQuery

# Letters and digits: punctuation separates words, as it does in the indexed columns
# (`jane.doe@example.com` is indexed as jane, doe, example, com; `(555) 123-4567` as
# 555, 123, 4567 and 5551234567).
_WORD = re.compile(r"[^\W_]+")


def prefix_search_query(text: str) -> SearchQuery | None:
    """`smi joh` -> `smi:* & joh:*` in the 'simple' configuration (the one the columns use).

    Only letters and digits reach to_tsquery, so no input can make it raise a syntax error.
    """
    words = _WORD.findall(text.lower())
    if not words:
        return None
    return SearchQuery(" & ".join(f"{word}:*" for word in words), search_type="raw", config="simple")
