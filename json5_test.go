package ccrusage

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStripJSON5(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"plain JSON unchanged", `{"a":[1,2],"b":"c"}`, `{"a":[1,2],"b":"c"}`},
		{"line comment", "{\"a\":1 // one\n}", "{\"a\":1       \n}"},
		{"line comment at end", "{}// end", "{}      "},
		{"block comment keeps lines", "{/* a\r\nb */}", "{    \r\n    }"},
		{"empty block comment", "[/**/1]", "[    1]"},
		{"trailing comma object", `{"a":1,}`, `{"a":1 }`},
		{"trailing comma array", "[1,\n]", "[1 \n]"},
		{"trailing comma before comment", "[1, /* x */ ]", "[1          ]"},
		{"trailing comma after line comment", "[1, // x\n]", "[1      \n]"},
		{"inner commas kept", `[1, 2, [3,]]`, `[1, 2, [3 ]]`},
		{"comment markers in string", `{"u":"http://x/*y*/"}`, `{"u":"http://x/*y*/"}`},
		{"escaped quote in string", `["a\"//",1]`, `["a\"//",1]`},
		{"escaped backslash ends string", `["a\\"//x` + "\n]", `["a\\"   ` + "\n]"},
		{"comma inside string", `["a,]"]`, `["a,]"]`},
		{"single-quoted string", `['//',1,]`, `['//',1 ]`},
		{"lone slash kept", `[1/2]`, `[1/2]`},
		{"star slash order", "[/*/ */1]", "[      1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := stripJSON5([]byte(tt.in))
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
		})
	}
}

func TestStripJSON5UnclosedComment(t *testing.T) {
	_, err := stripJSON5([]byte("{\n  \"a\": 1 /* open */ /* and never closed\n}"))
	require.Error(t, err)
	assert.Equal(t, "line 2, column 21: block comment is never closed with */", err.Error())
}

func TestStripJSON5Decodes(t *testing.T) {
	in := `{
	  // providers
	  "Providers": [ { "name": "p", "models": ["a", "b",], }, ],
	  /* router */ "Router": { "default": "p,a", },
	}`
	got, err := stripJSON5([]byte(in))
	require.NoError(t, err)

	var v, want any
	require.NoError(t, json.Unmarshal(got, &v))
	require.NoError(t, json.Unmarshal([]byte(`{"Providers":[{"name":"p","models":["a","b"]}],"Router":{"default":"p,a"}}`), &want))
	assert.Equal(t, want, v)
}

func TestPosition(t *testing.T) {
	data := []byte("ab\ncé\nx")
	tests := []struct {
		off          int
		line, column int
	}{
		{0, 1, 1},
		{2, 1, 3},
		{3, 2, 1},
		{6, 2, 3}, // past the two-byte é
		{7, 3, 1},
		{100, 3, 2},
		{-1, 1, 1},
	}
	for _, tt := range tests {
		line, column := position(data, tt.off)
		assert.Equal(t, tt.line, line, "offset %d", tt.off)
		assert.Equal(t, tt.column, column, "offset %d", tt.off)
	}
}

// FuzzStripJSON5 checks that the pre-pass only blanks bytes: the output is
// as long as the input, keeps every line break in place, changes bytes to
// spaces only, and leaves valid JSON unchanged.
func FuzzStripJSON5(f *testing.F) {
	for _, seed := range []string{
		`{"a":1}`,
		"{\"a\":1, // c\n}",
		"[/* x */1,2,]",
		`{"u":"http://x/*y*/"}`,
		`['//',"\"//",]`,
		"/* open",
		"//",
		"\"unterminated // string",
		"[1,,]",
		"{\r\n/*\r\n*/}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := stripJSON5(in)
		if err != nil {
			return
		}
		require.Len(t, out, len(in))
		for i := range in {
			if in[i] == '\n' || in[i] == '\r' {
				require.Equal(t, in[i], out[i], "line break at offset %d", i)
			}
			if in[i] != out[i] {
				require.Equal(t, byte(' '), out[i], "offset %d", i)
			}
		}
		if json.Valid(in) {
			require.True(t, bytes.Equal(in, out), "valid JSON changed: %q -> %q", in, out)
		}
		if json.Valid(out) {
			again, err := stripJSON5(out)
			require.NoError(t, err)
			require.Equal(t, out, again)
		}
	})
}
