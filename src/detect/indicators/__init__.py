"""Indicators of compromise: feed formats, normalisation, suppression and the compiled index."""
