"""Built-in model plugins, one module each; every module has ``register(registry)``."""
