"""rolloutlab tune: search a strategy's settings for a scenario (Optuna), on common random numbers."""
