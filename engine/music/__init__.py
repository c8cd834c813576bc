"""The music model: audio front end, converted musicnn taggers, per-segment tags and embeddings."""
