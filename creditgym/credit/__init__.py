"""Credit assignment: turn-reward shapers and advantage estimators."""
