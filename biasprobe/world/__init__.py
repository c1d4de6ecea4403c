"""The built-in photographer's-bias world: generation, small CNNs and their training."""

from biasprobe.world.generate import WorldConfig, WorldInfo, make_world, read_world_info

__all__ = ["WorldConfig", "WorldInfo", "make_world", "read_world_info"]
