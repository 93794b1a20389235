-- provider_calls.step uses the workflow's step names (contracts/steps.py): the song submission is `submit`.
UPDATE provider_calls SET step = 'submit' WHERE step = 'songs';
