"""Statistics, progress, audit log and quarantine: what a run tells about itself."""
