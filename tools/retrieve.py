"""Search an image archive by text: ``python tools/retrieve.py {index,search,search-image} ...``.

The same as the ``rsretrieval-retrieve`` command; see ``docs/retrieval.md``.
"""

import sys

from rsretrieval.search.cli import main

if __name__ == '__main__':
    main(sys.argv[1:])
