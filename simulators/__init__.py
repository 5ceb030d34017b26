"""Data generators that write field stores (see CONVENTIONS.md). They never import forecast's models."""
