"""Caption cleaning shared by every dataset format."""

from __future__ import annotations

import re

_NON_WORD = re.compile(r'[^a-z0-9]+')


def clean_caption(text: str, max_words: int = 30) -> str:
    """Normalise a caption as ALBEF/GaLR do before tokenisation.

    Lower-cases, replaces punctuation by spaces (apostrophes inside words are
    dropped, ``building's`` -> ``buildings``), collapses white space and keeps
    the first ``max_words`` words.

    Args:
        text: Raw caption.
        max_words: Number of words kept.

    Returns:
        The cleaned caption; empty if ``text`` holds no word.
    """
    words = _NON_WORD.sub(' ', text.lower().replace("'", '')).split()
    return ' '.join(words[:max_words])
