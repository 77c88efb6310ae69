"""Edits of a finished output: erasure, scrubbing of the files beside the shards, the roll-forward journal, version records."""
