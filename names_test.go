package ccrusage

import (
	"fmt"
	"math/rand/v2"
	"sync"
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

// collidingNames returns count distinct valid names that share their
// length and their first, middle and last bytes, so that every nameIndex
// gives them the same home slot. The middle byte is the continuation byte
// of "é" (0xC3 0xA9). count must be at most 26*26.
func collidingNames(first byte, count int) []string {
	names := make([]string, count)
	for i := range names {
		names[i] = string([]byte{first, 'a' + byte(i%26), 0xC3, 0xA9, 'a' + byte(i/26), 'z'})
	}
	return names
}

func TestCollidingNamesShareHash(t *testing.T) {
	x := newNameIndex(map[string]int{})
	names := collidingNames('p', 26*26)
	for _, name := range names {
		require.Len(t, name, 6)
		require.Equal(t, byte(0xA9), name[len(name)/2], "%q", name)
		assert.Equal(t, x.hash(names[0]), x.hash(name), "%q", name)
	}
}

// TestTrackerCollidingNamesConcurrent records under names that share a hash
// from several goroutines at once, past MaxProviders and MaxTasks, while
// another goroutine reads. A name either gets counts of its own, all of
// them, or all of its counts land under OverflowName, so every count is
// exact against a model that maps the names the Tracker admitted.
func TestTrackerCollidingNamesConcurrent(t *testing.T) {
	const maxProviders, maxTasks = 12, 6
	const goroutines, rounds = 4, 25
	providers := collidingNames('p', 30)
	// The empty task means TaskDefault, which takes one of the MaxTasks
	// names like any other.
	tasks := append(collidingNames('t', 9), "")
	tr, _, _ := newTracker(t, base, Config{MaxProviders: maxProviders, MaxTasks: maxTasks})

	// Each goroutine records every provider once a round, with a task and a
	// way of recording that depend on the goroutine, the round and the
	// provider, in an order of its own.
	taskOf := func(g, r, i int) string { return tasks[(g+r+i)%len(tasks)] }
	var writers sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		writers.Add(1)
		go func(g int) {
			defer writers.Done()
			for r := 0; r < rounds; r++ {
				for k := range providers {
					i := (k + g*7 + r) % len(providers)
					provider, task := providers[i], taskOf(g, r, i)
					switch (g + r + i) % 3 {
					case 0:
						assert.NoError(t, tr.Record(provider, task, Usage{InputTokens: 1}))
					case 1:
						h, err := tr.Handle(provider, task)
						if assert.NoError(t, err) {
							h.Record(Usage{InputTokens: 1})
						}
					case 2:
						req, err := tr.Begin(provider, task, 5)
						if assert.NoError(t, err) {
							assert.NoError(t, req.Finish(Usage{InputTokens: 1}))
						}
					}
				}
			}
		}(g)
	}
	done := make(chan struct{})
	var reader sync.WaitGroup
	reader.Add(1)
	go func() {
		defer reader.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			snapshot := tr.Snapshot()
			assert.LessOrEqual(t, len(snapshot.Providers), maxProviders+1)
			for _, p := range snapshot.Providers {
				assert.Zero(t, p.Failures, p.Name)
			}
			_, err := tr.Status(providers[len(providers)-1])
			assert.NoError(t, err)
		}
	}()
	writers.Wait()
	close(done)
	reader.Wait()

	// The model: which names the Tracker admitted, read from the snapshot,
	// and every record mapped to its admitted name or to OverflowName.
	s := tr.Snapshot()
	admittedProviders := map[string]bool{}
	admittedTasks := map[string]bool{}
	for _, p := range s.Providers {
		admittedProviders[p.Name] = true
		for task := range p.Tasks {
			admittedTasks[task] = true
		}
	}
	require.Len(t, admittedProviders, maxProviders+1, "providers with OverflowName")
	require.True(t, admittedProviders[OverflowName])
	require.LessOrEqual(t, len(admittedTasks), maxTasks+1, "tasks with OverflowName")

	want := map[string]map[string]int64{}
	for g := 0; g < goroutines; g++ {
		for r := 0; r < rounds; r++ {
			for i, provider := range providers {
				task := taskOf(g, r, i)
				if task == "" {
					task = TaskDefault
				}
				if !admittedProviders[provider] {
					provider = OverflowName
				}
				if !admittedTasks[task] {
					task = OverflowName
				}
				if want[provider] == nil {
					want[provider] = map[string]int64{}
				}
				want[provider][task]++
			}
		}
	}
	for _, p := range s.Providers {
		got := map[string]int64{}
		for task, c := range p.Tasks {
			got[task] = c.Requests
			assert.Equal(t, c.Requests, c.InputTokens, "%s/%s: one input token per request", p.Name, task)
		}
		assert.Equal(t, want[p.Name], got, p.Name)
	}

	// Status finds every admitted name and no other, even though all of
	// them share a home slot.
	for _, provider := range collidingNames('p', 40) {
		st, err := tr.Status(provider)
		require.NoError(t, err)
		var requests int64
		if admittedProviders[provider] {
			requests = int64(goroutines * rounds)
		}
		assert.Equal(t, requests, st.Requests.Used, provider)
	}
}
