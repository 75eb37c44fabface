"""The only place that imports Qt: the operator console (``console/``); review and curation follow."""
