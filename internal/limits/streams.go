package limits

import (
	"sync"
	"time"

	"github.com/parley-chat/parley/internal/chat"
)

// Retry-After of a refused stream. A slot frees only when a stream ends,
// which the server cannot foresee: these are a polite pace for a client
// that reconnects in a loop, not a promise.
const (
	// userStreamRetryAfter: the caller holds its own slots and frees one
	// by closing a stream (a closed tab's stream ends at once; a vanished
	// one within PARLEY_TCP_USER_TIMEOUT plus a heartbeat).
	userStreamRetryAfter = 2 * time.Second
	// replicaStreamRetryAfter: the replica is full; a client may try
	// another replica at once, or this one later.
	replicaStreamRetryAfter = 5 * time.Second
)

// Streams caps the event streams open on one replica: per user and in all.
// Room streams and user streams count alike, one slot each. Its methods are
// safe for concurrent use. The zero value is not usable; make one with
// NewStreams.
type Streams struct {
	perUser int // 0: no cap
	total   int // 0: no cap

	mu    sync.Mutex
	open  int
	users map[string]int // open streams by user; users with none are absent
	// refusals by cap, for metrics.
	refusedUser, refusedReplica uint64
}

// NewStreams returns caps of perUser streams per user and total streams on
// the replica; 0 turns a cap off.
func NewStreams(perUser, total int) *Streams {
	return &Streams{perUser: max(perUser, 0), total: max(total, 0), users: make(map[string]int)}
}

// StreamSlot is one open stream's place under the caps. Release gives it
// back; it is safe to call more than once. The zero StreamSlot stands for a
// stream under no caps: its Release does nothing.
type StreamSlot struct {
	once    sync.Once
	streams *Streams
	userID  string
}

// Acquire takes a slot for a stream of userID, checking and counting in one
// step, so concurrent opens cannot overshoot a cap. At the user's cap it
// returns an ETooMany error (429), at the replica's an EUnavailable one
// (503), each with a RetryAfter; the user's cap is checked first, since it
// says what the caller can do about it.
func (s *Streams) Acquire(userID string) (*StreamSlot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.users[userID]
	if s.perUser > 0 && n >= s.perUser {
		s.refusedUser++
		return nil, chat.TooMany(userStreamRetryAfter, "too many open streams for this user on this replica (at most %d); close one and retry", s.perUser)
	}
	if s.total > 0 && s.open >= s.total {
		s.refusedReplica++
		return nil, chat.Busy(replicaStreamRetryAfter, "this replica serves as many streams as it can; retry later or elsewhere")
	}
	s.users[userID] = n + 1
	s.open++
	return &StreamSlot{streams: s, userID: userID}, nil
}

// Release gives the slot back (once, however often it is called).
func (sl *StreamSlot) Release() {
	sl.once.Do(func() {
		if sl.streams != nil {
			sl.streams.release(sl.userID)
		}
	})
}

func (s *Streams) release(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open--
	if n := s.users[userID] - 1; n > 0 {
		s.users[userID] = n
	} else {
		delete(s.users, userID) // the map holds only users with streams
	}
}

// StreamStats are the caps' figures at one moment.
type StreamStats struct {
	Open int // streams open on the replica
	// RefusedUser and RefusedReplica count refusals since start, at the
	// user's cap and at the replica's.
	RefusedUser, RefusedReplica uint64
}

// Stats reads the figures.
func (s *Streams) Stats() StreamStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return StreamStats{Open: s.open, RefusedUser: s.refusedUser, RefusedReplica: s.refusedReplica}
}

// OpenFor is how many streams userID has open on the replica.
func (s *Streams) OpenFor(userID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[userID]
}
