"""Exports of a tagged version into the formats training frameworks read as they are."""
