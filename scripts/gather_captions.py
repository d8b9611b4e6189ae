"""One caption variant of every shard, gathered into one file (rule gather_captions).

A plain file merge: no `setup_job`, whose torch import would cost more than the merge.
"""

from viclip.captions.io import gather_variant

gather_variant(list(snakemake.input), snakemake.wildcards.variant, snakemake.output[0], snakemake.log[0])
