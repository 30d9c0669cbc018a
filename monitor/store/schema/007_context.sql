-- The session's names (exam title, course, install, status reason) as JSON, so the events the
-- clock makes after a restart (overdue at a deadline) name the exam before the next poll.
-- Null when the API named none. The reviewer is not kept: only the poll that saw it reports it.
ALTER TABLE session ADD COLUMN context TEXT;
