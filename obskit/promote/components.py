"""Component facts live in :mod:`obskit.components` (one lowest module every runtime reads);
kept here so that ``obskit.promote`` code can import them from where it always did."""

from obskit.components import PORTS, Component, components  # noqa: F401
