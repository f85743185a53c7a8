package ccrusage

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// The functions in this file read members and elements of JSON that
// json.Valid has accepted, without decoding it. json.Unmarshal into a map,
// a struct of json.RawMessage or a []json.RawMessage allocates a copy of
// every value and scans each nested value again at every level, which
// made up most of the Transport's CPU time per request. These functions
// give the same results as those calls on valid JSON, which the fuzz test
// in jsonscan_test.go checks. On invalid JSON their results are
// unspecified, but they do not panic.

// objectReader reads the members of a JSON object one at a time.
type objectReader struct {
	data []byte
	// off is the offset of the next member's key, or of the closing brace.
	off int
}

// newObjectReader returns a reader of the members of the object v, and
// false when v is not an object. White space around v is ignored.
func newObjectReader(v []byte) (objectReader, bool) {
	v = trimJSONSpace(v)
	if len(v) < 2 || v[0] != '{' {
		return objectReader{}, false
	}
	return objectReader{data: v, off: 1}, true
}

// next returns the next member's key, with its quotes and any escapes as
// written, and its value without surrounding white space. It reports false
// after the last member.
func (r *objectReader) next() (key, value []byte, ok bool) {
	i := skipJSONSpace(r.data, r.off)
	if i >= len(r.data) || r.data[i] != '"' {
		return nil, nil, false
	}
	end := skipString(r.data, i) + 1
	key = r.data[i:end]

	// Skip the colon and the space around it.
	i = skipJSONSpace(r.data, end) + 1
	i = skipJSONSpace(r.data, i)
	end = skipValue(r.data, i)
	value = r.data[min(i, end):end]

	i = skipJSONSpace(r.data, end)
	if i < len(r.data) && r.data[i] == ',' {
		i++
	}
	r.off = i
	return key, value, true
}

// arrayReader reads the elements of a JSON array one at a time.
type arrayReader struct {
	data []byte
	// off is the offset of the next element, or of the closing bracket.
	off int
}

// newArrayReader returns a reader of the elements of the array v, and
// false when v is not an array. White space around v is ignored.
func newArrayReader(v []byte) (arrayReader, bool) {
	v = trimJSONSpace(v)
	if len(v) < 2 || v[0] != '[' {
		return arrayReader{}, false
	}
	return arrayReader{data: v, off: 1}, true
}

// next returns the next element without surrounding white space, and
// false after the last element.
func (r *arrayReader) next() ([]byte, bool) {
	i := skipJSONSpace(r.data, r.off)
	if i >= len(r.data) || r.data[i] == ']' {
		return nil, false
	}
	end := skipValue(r.data, i)
	if end <= i {
		// Only invalid JSON gets here: stop instead of looping.
		return nil, false
	}
	value := r.data[i:end]

	i = skipJSONSpace(r.data, end)
	if i < len(r.data) && r.data[i] == ',' {
		i++
	}
	r.off = i
	return value, true
}

// keyIs reports whether an object key, as objectReader.next returns it,
// is name once unescaped. This is how encoding/json matches the keys of a
// map[string]T.
func keyIs(key []byte, name string) bool {
	if bytes.IndexByte(key, '\\') < 0 {
		return len(key) == len(name)+2 && string(key[1:len(key)-1]) == name
	}
	s, ok := jsonString(key)
	return ok && s == name
}

// keyMatches reports whether an object key, as objectReader.next returns
// it, names the struct field name for encoding/json: once unescaped, it
// equals name under Unicode simple case folding (bytes.EqualFold), so
// "USAGE" and "\u0075sage" match "usage". Callers use it only for sets of
// field names that no key can match two of, so the exact match that
// encoding/json tries first changes nothing.
func keyMatches(key []byte, name string) bool {
	if bytes.IndexByte(key, '\\') < 0 {
		return len(key) >= 2 && bytes.EqualFold(key[1:len(key)-1], []byte(name))
	}
	s, ok := jsonString(key)
	return ok && bytes.EqualFold([]byte(s), []byte(name))
}

// readMembers stores in values[i] the value of the last member of the JSON
// object obj whose key matches names[i] as encoding/json matches struct
// fields (see keyMatches). values must be as long as names. A value stays
// nil when no key matches it or when obj is not an object.
func readMembers(obj []byte, names []string, values [][]byte) {
	r, ok := newObjectReader(obj)
	for ok {
		var key, value []byte
		if key, value, ok = r.next(); !ok {
			return
		}
		for i, name := range names {
			if keyMatches(key, name) {
				values[i] = value
				break
			}
		}
	}
}

// skipValue returns the offset just past the JSON value that starts at
// data[i].
func skipValue(data []byte, i int) int {
	if i >= len(data) {
		return len(data)
	}
	switch data[i] {
	case '"':
		return skipString(data, i) + 1
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				j = skipString(data, j)
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(data)
	}

	// A number, true, false or null: it ends at the next delimiter.
	j := i
	for j < len(data) && !isJSONSpace(data[j]) && data[j] != ',' && data[j] != '}' && data[j] != ']' {
		j++
	}
	return j
}

func skipJSONSpace(data []byte, i int) int {
	for i < len(data) && isJSONSpace(data[i]) {
		i++
	}
	return i
}

func trimJSONSpace(v []byte) []byte {
	start := skipJSONSpace(v, 0)
	end := len(v)
	for end > start && isJSONSpace(v[end-1]) {
		end--
	}
	return v[start:end]
}

// jsonString returns the string that a JSON value contains, and false when
// it is absent or not a string.
func jsonString(raw json.RawMessage) (string, bool) {
	v := bytes.TrimSpace(raw)
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}

	// A string without escapes, quotes, control characters or invalid
	// UTF-8 decodes to its own bytes. Anything else goes through
	// encoding/json, which also rejects what is not one JSON string.
	inner := v[1 : len(v)-1]
	if plainJSONString(inner) {
		return string(inner), true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// plainJSONString reports whether s, the text between a JSON string's
// quotes, has no escape, quote, control character or invalid UTF-8.
func plainJSONString(s []byte) bool {
	for _, c := range s {
		if c < 0x20 || c == '"' || c == '\\' {
			return false
		}
	}
	return utf8.Valid(s)
}

// jsonArray returns the elements of a JSON array, or nil when raw is
// absent or not an array. raw must be valid JSON.
func jsonArray(raw json.RawMessage) []json.RawMessage {
	r, ok := newArrayReader(raw)
	if !ok {
		return nil
	}
	elems := []json.RawMessage{}
	for {
		elem, ok := r.next()
		if !ok {
			return elems
		}
		elems = append(elems, elem)
	}
}
