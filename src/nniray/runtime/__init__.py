"""Runtime-facing interfaces that user algorithms subclass (no Ray here)."""
