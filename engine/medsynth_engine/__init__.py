"""MedSynth engine: model plugins, the brain phantom, generation, export and (later) the HTTP service."""

__version__ = "0.1.0"
