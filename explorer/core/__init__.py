"""Knows no network: where the assets are, text as shown, cache keys, CSV/JSON exports, images
and their preprocessing, the on-disk cache, and what the server spends."""
