"""Caption cleaning shared by every dataset format."""

from __future__ import annotations

from rsretrieval.utils.caption_words import caption_words


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
    return ' '.join(caption_words(text)[:max_words])
