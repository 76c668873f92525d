"""featlab's version (one place; the store records it in every manifest)."""
__version__ = "0.1.0"
