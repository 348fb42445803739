"""Evaluation before anything leaves the hospital: memorisation audit, quality and diversity metrics, TSTR, reader study."""
