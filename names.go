package ccrusage

// nameIndex maps provider or task names to their values. It does not
// change once built. Adding a name builds a new one, so the record path
// reads it without a lock.
//
// Every name is in m. Lookups on the record path go first to slots, an
// open-addressed table hashed from four bytes of the name, which is
// cheaper than a map lookup for the few short names a tracker has. A name
// goes into the first free slot among the probeLimit slots from its hash,
// and stays only in m when those are taken, so names chosen to share a
// hash cost a map lookup more, never a longer scan.
type nameIndex[V any] struct {
	m     map[string]V
	slots []nameSlot[V] // a power of two in length
	shift uint          // 64 minus the base-2 logarithm of len(slots)
}

// nameSlot is one entry of nameIndex.slots. An empty name marks a free slot,
// which no valid name can take.
type nameSlot[V any] struct {
	name  string
	value V
}

// probeLimit is the number of consecutive slots, from a name's home slot
// on, that place and get probe.
const probeLimit = 4

// newNameIndex returns the index of the names in m. It keeps m, which the
// caller must not change afterwards.
func newNameIndex[V any](m map[string]V) *nameIndex[V] {
	size, shift := 8, uint(64-3)
	for size < 2*len(m) {
		size, shift = size*2, shift-1
	}
	x := &nameIndex[V]{m: m, slots: make([]nameSlot[V], size), shift: shift}
	for name, v := range m {
		x.place(name, v)
	}
	return x
}

// place puts name in the first free slot within probeLimit of its hash,
// if there is one.
func (x *nameIndex[V]) place(name string, v V) {
	if name == "" {
		return
	}
	mask := len(x.slots) - 1
	h := x.hash(name)
	for j := 0; j < probeLimit; j++ {
		s := &x.slots[(h+j)&mask]
		if s.name == "" {
			s.name, s.value = name, v
			return
		}
	}
}

// hash returns the home slot of name: its length and its first, middle and
// last bytes, mixed by a multiplication and reduced to the table's size.
func (x *nameIndex[V]) hash(name string) int {
	n := len(name)
	if n == 0 {
		return 0
	}
	k := uint64(n) | uint64(name[0])<<8 | uint64(name[n/2])<<16 | uint64(name[n-1])<<24
	return int((k * 0x9e3779b97f4a7c15) >> x.shift)
}

// get returns the value of name and whether it is present.
func (x *nameIndex[V]) get(name string) (V, bool) {
	mask := len(x.slots) - 1
	h := x.hash(name)
	for j := 0; j < probeLimit; j++ {
		s := &x.slots[(h+j)&mask]
		if s.name == name && name != "" {
			return s.value, true
		}
		if s.name == "" {
			// A name takes the first free slot from its hash, and slots
			// are never freed, so name was never added.
			var zero V
			return zero, false
		}
	}
	v, ok := x.m[name]
	return v, ok
}

// with returns an index of the names of x and name, which must not be in
// x.
func (x *nameIndex[V]) with(name string, v V) *nameIndex[V] {
	m := make(map[string]V, len(x.m)+1)
	for k, w := range x.m {
		m[k] = w
	}
	m[name] = v
	return newNameIndex(m)
}
