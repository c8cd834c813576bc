"""Learning from the user's own edits (`viml learn`): past timelines → training pairs → a fine-tuned,
exported ViML bundle, evaluated on held-out projects. The one layer that sees both the catalog (media,
segments, relinking) and the torch side (training, export)."""
