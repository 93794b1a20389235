-- Each counted create removes a few rows past every window (smol/repo.py take_create_slot): found by age, not by
-- reading the whole table.
CREATE INDEX create_requests_age ON create_requests (created_at);
