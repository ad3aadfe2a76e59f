"""The two ways a description can be wrong."""


class ConfigError(ValueError):
    """A configuration or description outside what can be built; the message says what is
    allowed (and, for a spec, where: stage, block, branch, layer)."""


class ShapeError(ConfigError):
    """A layer that would refuse its input (PyTorch raises a RuntimeError there too): a kernel
    larger than its input, branches that do not line up, a wrong number of features."""
