"""detect: batch detection over pooled network telemetry (placeholder API, filled in below)."""

__version__ = "0.1.0"
