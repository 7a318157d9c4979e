package stream

import (
	"slices"
	"sync"
	"time"

	"github.com/parley-chat/parley/internal/chat"
)

// Presence counts each user's open streams on this replica and tells the
// store when a user opens their first one and when their last one has been
// closed for the grace period: a stream that reconnects within the grace
// (to this replica or another) does not make its user flap. The store
// decides, across replicas, whether that makes the user online or offline.
//
// The hub calls Opened and Closed with its lock held: they only take
// Presence's own lock, arm or stop a timer, and hand the store a
// transition, which it queues without blocking.
type Presence struct {
	store chat.PresenceStore
	grace time.Duration

	mu      sync.Mutex
	users   map[string]*presenceUser
	stopped bool
}

type presenceUser struct {
	streams int
	// offline, while set, is the grace timer after the last stream
	// closed; the store still counts the user in.
	offline *time.Timer
}

// NewPresence returns a presence counter reporting to store, with grace
// between a user's last stream closing and going offline.
func NewPresence(store chat.PresenceStore, grace time.Duration) *Presence {
	return &Presence{store: store, grace: grace, users: make(map[string]*presenceUser)}
}

// Opened counts a stream of userID that opened.
func (p *Presence) Opened(userID string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	u := p.users[userID]
	if u == nil {
		u = &presenceUser{}
		p.users[userID] = u
		p.store.UserOnline(userID)
	}
	u.streams++
	if u.offline != nil {
		u.offline.Stop() // back within the grace: no flap
		u.offline = nil
	}
}

// Closed counts a stream of userID that closed; after the last one, the
// user goes offline when the grace has passed without a new one.
func (p *Presence) Closed(userID string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.users[userID]
	if p.stopped || u == nil || u.streams == 0 {
		return
	}
	u.streams--
	if u.streams > 0 {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(p.grace, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.stopped || p.users[userID] != u || u.offline != t {
			return // reopened meanwhile, or stopped
		}
		delete(p.users, userID)
		p.store.UserOffline(userID)
	})
	u.offline = t
}

// Online lists the users this replica counts online (streams open, or
// within the grace), for the store to register again after it lost them.
func (p *Presence) Online() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]string, 0, len(p.users))
	for id := range p.users {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Stop stops counting: at shutdown the replica's users are handed over as
// a whole (see postgres.Signals.Close), not one by one as streams end.
func (p *Presence) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	for _, u := range p.users {
		if u.offline != nil {
			u.offline.Stop()
		}
	}
}
