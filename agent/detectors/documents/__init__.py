"""Judgment documents dropped into publication folders, checked before they go online."""
