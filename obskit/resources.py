"""Where the template trees (configs/, compose/, terraform/) are.

In a wheel they ship inside the package as ``obskit/_data``; in a checkout (editable
install) they are the top-level folders of the repository.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

TREES = ("configs", "compose", "terraform")


@lru_cache(maxsize=1)
def data_root() -> Path:
    here = Path(__file__).resolve().parent
    packaged = here / "_data"
    if (packaged / "configs").is_dir():
        return packaged
    checkout = here.parent
    if (checkout / "configs").is_dir():
        return checkout
    raise RuntimeError(  # a broken installation, not a user error
        f"obskit's templates are missing: neither {packaged} nor {checkout / 'configs'} exists"
    )
