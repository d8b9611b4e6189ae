"""ViCLIP ablations: the library behind the Snakemake workflow.

Nothing in this package imports Snakemake; scripts/ adapt it to rules.
"""

__version__ = "0.1.0"
