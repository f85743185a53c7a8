package ccrusage

// store is the seam between a Tracker and where its counts are shared.
// Counting always happens in the Tracker's own memory; a store decides which
// process sends each alert, and reports whether counts survive a restart.
type store interface {
	// claimAlert reports whether this Tracker should send a. A store shared
	// by several processes lets exactly one of them claim each provider,
	// level and day.
	claimAlert(a Alert) bool
	// persistent reports whether counts survive a restart of the process.
	persistent() bool
}

// memoryStore keeps everything in the Tracker's memory: every alert is this
// process's to send, and a restart starts from zero.
type memoryStore struct{}

func (memoryStore) claimAlert(Alert) bool { return true }
func (memoryStore) persistent() bool      { return false }
