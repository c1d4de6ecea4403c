"""Inputs: decoding image files, image sources (folders, manifests, bundled photos), class maps,
object boxes and the resizes every stage shares."""
