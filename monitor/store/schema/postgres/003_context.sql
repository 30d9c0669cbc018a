-- SQLite's 007: the session's names (exam title, course, install, status reason) as JSON.
ALTER TABLE session ADD COLUMN context text;
