"""The only place that imports Qt: the operator console (``console/``), the curation screen
(``curate/``); review follows."""
