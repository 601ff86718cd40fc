"""Looking inside a run: what the engine kept at its best and last epochs (test logits,
labels, embeddings, attention maps and view inputs of a few fixed samples), the numbers
computed from it (confusion, per-class scores, calibration, t-SNE with V-score), and the
figures and JSON that ``kdtui analyze`` writes.

Torch-free, and light to import: scikit-learn, scipy and matplotlib are imported inside the
functions that need them, so that neither the CLI nor the app pays for them at start-up.
"""
