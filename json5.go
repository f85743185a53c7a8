package ccrusage

import "fmt"

// stripJSON5 returns a copy of data in which the two JSON5 extensions that
// CCR config files use are blanked out: comments (// to the end of the
// line, and /* ... */) and trailing commas before a closing } or ]. Every
// removed byte becomes a space, except that line breaks inside comments
// are kept, so offsets and line numbers in the result are those of data.
//
// Text inside double- and single-quoted strings is never changed. Other
// JSON5 syntax, such as single-quoted strings, unquoted keys or hexadecimal
// numbers, is left in place for encoding/json to reject. stripJSON5 fails
// only on a block comment that is never closed.
func stripJSON5(data []byte) ([]byte, error) {
	out := make([]byte, len(data))
	copy(out, data)

	// pendingComma is the offset of a comma that may turn out to be
	// trailing, or -1: only spaces and comments have followed it so far.
	pendingComma := -1
	for i := 0; i < len(out); i++ {
		c := out[i]
		switch {
		case c == '"' || c == '\'':
			pendingComma = -1
			i = skipString(out, i)
		case c == '/' && i+1 < len(out) && out[i+1] == '/':
			for ; i < len(out) && out[i] != '\n' && out[i] != '\r'; i++ {
				out[i] = ' '
			}
		case c == '/' && i+1 < len(out) && out[i+1] == '*':
			end, ok := blankBlockComment(out, i)
			if !ok {
				line, column := position(data, i)
				return nil, fmt.Errorf("line %d, column %d: block comment is never closed with */", line, column)
			}
			i = end
		case c == ',':
			pendingComma = i
		case c == '}' || c == ']':
			if pendingComma >= 0 {
				out[pendingComma] = ' '
			}
			pendingComma = -1
		case isJSONSpace(c):
		default:
			pendingComma = -1
		}
	}
	return out, nil
}

// skipString returns the offset of the quote that closes the string opened
// at start, or the last offset of data if the string is never closed.
func skipString(data []byte, start int) int {
	quote := data[start]
	for i := start + 1; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case quote:
			return i
		}
	}
	return len(data) - 1
}

// blankBlockComment overwrites the block comment that starts at start with
// spaces, keeping line breaks, and returns the offset of its closing '/'.
// It reports false if the comment is never closed.
func blankBlockComment(data []byte, start int) (int, bool) {
	for i := start + 2; i+1 < len(data); i++ {
		if data[i] == '*' && data[i+1] == '/' {
			for j := start; j <= i+1; j++ {
				if data[j] != '\n' && data[j] != '\r' {
					data[j] = ' '
				}
			}
			return i + 1, true
		}
	}
	return 0, false
}

func isJSONSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// position returns the 1-based line and column of byte offset off in data.
// The column counts runes, so it matches what an editor shows for UTF-8
// text. An offset past the end is placed just after the last byte.
func position(data []byte, off int) (line, column int) {
	off = min(max(off, 0), len(data))
	line, column = 1, 1
	for _, r := range string(data[:off]) {
		if r == '\n' {
			line++
			column = 1
			continue
		}
		column++
	}
	return line, column
}
