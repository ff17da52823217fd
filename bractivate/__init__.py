"""Bractivate: evolutionary search of UNet dendritic skip connections (ICLR 2021 workshop paper).

The package is split the way the method is: :mod:`bractivate.genome` describes an architecture,
:mod:`bractivate.model` builds it, :mod:`bractivate.train` trains it,
:mod:`bractivate.evaluation` scores it for the search, :mod:`bractivate.search` runs the
evolutionary loop, :mod:`bractivate.data` prepares data sets.
"""

__version__ = "0.1.0"
