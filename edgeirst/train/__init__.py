"""Training: one trainer for every model in the zoo, driven by what the model declares."""

from edgeirst.train.config import TrainConfig

__all__ = ["TrainConfig"]
