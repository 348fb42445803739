"""Torch-free library shared by the Slicer module, the standalone app and the CLI client.

Everything here runs in 3D Slicer's own Python: standard library and numpy only.
"""
