"""The obskit spec: a typed model (:mod:`.model`) and its layered loader (:mod:`.load`)."""
