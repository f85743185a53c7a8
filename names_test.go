package ccrusage

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNamesGet(t *testing.T) {
	m := map[string]int{}
	for i, name := range []string{TaskDefault, TaskBackground, TaskThink, TaskLongContext, TaskWebSearch, TaskImage, OverflowName} {
		m[name] = i
	}
	x := newNameIndex(m)

	for name, want := range m {
		got, ok := x.get(name)
		assert.True(t, ok, name)
		assert.Equal(t, want, got, name)
	}
	for _, name := range []string{"", "Default", "defaul", "default ", "thinks", "x"} {
		_, ok := x.get(name)
		assert.False(t, ok, "%q", name)
	}
}

// TestNamesSameHash adds names that share length and first, middle and last
// bytes, so that all hash to one slot: those past probeLimit must be found
// through the map.
func TestNamesSameHash(t *testing.T) {
	x := newNameIndex(map[string]int{})
	var added []string
	for i := 0; i < 40; i++ {
		name := fmt.Sprintf("a%cmm%cz", 'a'+i/26, 'a'+i%26)
		require.Equal(t, x.hash("a#mm#z"), x.hash(name), name)
		x = x.with(name, i)
		added = append(added, name)

		for j, name := range added {
			got, ok := x.get(name)
			assert.True(t, ok, name)
			assert.Equal(t, j, got, name)
		}
		_, ok := x.get("a#mm#z")
		assert.False(t, ok)
	}

	inSlots := 0
	for _, s := range x.slots {
		if s.name != "" {
			inSlots++
		}
	}
	assert.Equal(t, probeLimit, inSlots)
}

// TestNamesAgainstMap compares lookups with those of a plain map while
// random short names, many of them alike, are added one by one.
func TestNamesAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	letters := "ab\u00e9-"
	randomName := func() string {
		b := make([]byte, 0, 8)
		for n := rng.IntN(7); n >= 0; n-- {
			b = append(b, letters[rng.IntN(len(letters))])
		}
		return string(b)
	}

	want := map[string]int{}
	x := newNameIndex(map[string]int{})
	for i := 0; i < 300; i++ {
		name := randomName()
		if _, ok := want[name]; !ok && name != "" {
			want[name] = i
			x = x.with(name, i)
		}
		for j := 0; j < 20; j++ {
			probe := randomName()
			w, wok := want[probe]
			got, ok := x.get(probe)
			assert.Equal(t, wok, ok, "%q", probe)
			assert.Equal(t, w, got, "%q", probe)
		}
	}
	assert.Equal(t, want, x.m)
}
