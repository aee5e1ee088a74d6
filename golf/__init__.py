"""golf: a Hydra-driven PyTorch framework for the Parameter Golf problem."""

__version__ = "0.1.0"
