"""The synthetic library: every landing format of docs/LANDING.md, at any scale, from a seed."""

from .core import generate
from .report import GeneratedFile, GenerationReport
from .scales import SCALES, Scale

__all__ = ["generate", "SCALES", "Scale", "GenerationReport", "GeneratedFile"]
