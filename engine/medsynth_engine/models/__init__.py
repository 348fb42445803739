"""Model families, one package each (``<family>/__init__.py`` declares its ``FAMILY``: see ``contract.py``),
registered through the ``medsynth.models`` entry points in ``pyproject.toml`` like any third-party family."""
