"""Selective-search proposals: computation, caching, the released .mat files, recall."""
