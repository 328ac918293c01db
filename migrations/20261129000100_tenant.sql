-- Which Pluvo tenant this database's snapshot belongs to. The snapshot records what one tenant
-- acknowledged; planning another tenant against it would skip creates and send updates to
-- people who are not there. One row, written by the first sync; a run whose configuration names
-- another tenant (pluvo.url or pluvo.client_id) is refused.
CREATE TABLE tenant (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    url       TEXT NOT NULL,                   -- the GraphQL endpoint, normalised
    client_id TEXT NOT NULL,
    bound_at  TEXT NOT NULL
);
