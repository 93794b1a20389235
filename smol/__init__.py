"""Pieces shared by the API and the activities: settings, database, object store, errors, tokens."""
