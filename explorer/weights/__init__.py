"""Checkpoints: their formats and key maps, where public weights come from, downloads with
hash checks."""
