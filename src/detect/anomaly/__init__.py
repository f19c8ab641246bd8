"""Statistical detectors and correlation over windows, with state carried across runs."""
