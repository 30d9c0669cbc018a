-- Lifecycle-adaptive polling. A session's phase is derived from its snapshot, the time, and
-- when it was first seen settled. Retirement (no more polls) counts from that time, so it
-- must survive a restart. The appointment is part of the snapshot, read but never diffed.
-- (No semicolon in these comments: the migration runner splits statements on it.)
ALTER TABLE session ADD COLUMN appointment_date REAL;
ALTER TABLE session ADD COLUMN settled_since REAL;
