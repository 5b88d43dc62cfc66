"""Reusable blocks. One idea per file; models compose them and never re-implement them."""
