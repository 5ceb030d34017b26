"""Data generators that write field stores (see docs/formats.md). They never import forecast's models."""
