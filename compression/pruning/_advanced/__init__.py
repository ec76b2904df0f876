"""Private helpers shared by the advanced (iterative / search-based) pruners.

Nothing here is public API: the pruners in ``nniray.compression.pruning`` are.
"""
