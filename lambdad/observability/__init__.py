"""What lambdad records about functions: logs (metrics and billing later)."""
