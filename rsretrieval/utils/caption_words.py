"""The words of a caption, by the one rule that cleaning (datasets) and comparing (evaluation) share."""

from __future__ import annotations

import re

_NON_WORD = re.compile(r'[^a-z0-9]+')


def caption_words(text: str) -> list[str]:
    """The words of ``text`` as ALBEF/GaLR clean captions before tokenisation.

    Lower-cases, drops apostrophes inside words (``building's`` -> ``buildings``)
    and splits on every run of other characters than ``a-z`` and ``0-9``
    (punctuation, white space, accented letters). The datasets keep the first
    words of this (``clean_caption``) and caption-equivalent recall compares
    all of them (``normalise_caption``): one rule, so a caption a dataset holds
    is unchanged by the comparison.
    """
    return _NON_WORD.sub(' ', text.lower().replace("'", '')).split()
