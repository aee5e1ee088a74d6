"""A run as a record: its train_gpt.py (the counted code), generated from the run's config."""
