"""Inputs: decoding image files, image sources (folders, manifests, bundled photos), labels
checked against the model's classes, class maps, object boxes, safe file listing and reading,
file names as table text, and the resizes every stage shares (docs/reliability.md)."""
