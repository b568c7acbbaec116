-- Mark the file as a Kite Desk history ("KDHS") so that opening a foreign
-- SQLite file at the data path is refused before anything is written to it.
PRAGMA application_id = 1262766163;
