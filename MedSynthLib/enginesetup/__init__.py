"""Set up the engine's own Python environment from what the extension ships (no Qt, no torch: testable as is)."""
