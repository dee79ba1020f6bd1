"""descpipe: write pipeline stages once, export them as CWL, run them anywhere."""
from .split import SplitStage
from .stage import Stage

__version__ = "0.1.0"
__all__ = ["SplitStage", "Stage", "__version__"]
