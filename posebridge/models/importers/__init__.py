"""Importers: published head-pose weights (HopeNet .pkl, WHENet Keras .h5) -> posebridge networks."""

from posebridge.models.importers.hopenet import import_hopenet
from posebridge.models.importers.whenet import import_whenet

IMPORTERS = {"hopenet": import_hopenet, "whenet": import_whenet}

__all__ = ["IMPORTERS", "import_hopenet", "import_whenet"]
