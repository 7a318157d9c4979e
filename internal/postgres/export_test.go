package postgres

// GroupState is the group committer's groups in flight and posts queued,
// for tests that arrange which posts share a group.
func GroupState(db *DB) (running, queued int) {
	g := db.group
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.running, len(g.queue)
}

// MaxGroups is how many groups a replica has in flight at most.
const MaxGroups = maxGroups
