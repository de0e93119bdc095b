package route

import "sync"

// DefaultDecisionLogSize is how many recent decisions are kept.
const DefaultDecisionLogSize = 10_000

// DecisionLog keeps the most recent decisions in a ring, by id.
type DecisionLog struct {
	mu   sync.Mutex
	ring []*Decision
	next int
	byID map[string]*Decision
}

// NewDecisionLog keeps up to n decisions.
func NewDecisionLog(n int) *DecisionLog {
	if n <= 0 {
		n = DefaultDecisionLogSize
	}
	return &DecisionLog{ring: make([]*Decision, n), byID: make(map[string]*Decision, n)}
}

// Add records a finished decision, evicting the oldest when full.
func (l *DecisionLog) Add(d *Decision) {
	l.mu.Lock()
	if old := l.ring[l.next]; old != nil {
		delete(l.byID, old.ID)
	}
	l.ring[l.next] = d
	l.byID[d.ID] = d
	l.next = (l.next + 1) % len(l.ring)
	l.mu.Unlock()
}

// Get returns the decision with id, if it is still kept.
func (l *DecisionLog) Get(id string) (*Decision, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d, ok := l.byID[id]
	return d, ok
}

// Recent returns up to n of the newest decisions, newest first.
func (l *DecisionLog) Recent(n int) []*Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*Decision
	for i := 1; i <= len(l.ring) && len(out) < n; i++ {
		d := l.ring[(l.next-i+len(l.ring))%len(l.ring)]
		if d == nil {
			break
		}
		out = append(out, d)
	}
	return out
}
