"""The language-model engine every part shares.

A batched KV-cached runner, a sampler, model loading, device selection, and the small rules
(positions from masks, no dropout) that keep log-probs identical wherever they are computed.
"""
