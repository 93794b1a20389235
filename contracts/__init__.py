"""What crosses layers: workflow and activity inputs and results, signals, search attribute keys, step names and song
states. Workflows, activities, the API and the commands all import from here; this package imports nothing of ours."""
