"""Built-in job types: every module in this package is imported at start-up."""
