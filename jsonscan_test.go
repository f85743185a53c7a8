package ccrusage

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The decode functions below are reference versions of the readers in
// jsonscan.go and of their callers, written with json.Unmarshal. The
// tests require both to agree on every input that json.Valid accepts.

// decodeString is jsonString with encoding/json.
func decodeString(raw json.RawMessage) (string, bool) {
	v := bytes.TrimSpace(raw)
	if len(v) == 0 || v[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// decodeArray is jsonArray with encoding/json.
func decodeArray(raw json.RawMessage) []json.RawMessage {
	v := bytes.TrimSpace(raw)
	if len(v) == 0 || v[0] != '[' {
		return nil
	}
	var elems []json.RawMessage
	if json.Unmarshal(v, &elems) != nil {
		return nil
	}
	return elems
}

// decodeUsage is parseUsage with encoding/json.
func decodeUsage(raw json.RawMessage) reportedUsage {
	var u reportedUsage
	var j struct {
		InputTokens         json.RawMessage `json:"input_tokens"`
		OutputTokens        json.RawMessage `json:"output_tokens"`
		CacheReadTokens     json.RawMessage `json:"cache_read_input_tokens"`
		CacheCreationTokens json.RawMessage `json:"cache_creation_input_tokens"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &j) != nil {
		return u
	}
	for kind, value := range [usageKinds]json.RawMessage{j.InputTokens, j.OutputTokens, j.CacheReadTokens, j.CacheCreationTokens} {
		if n, ok := tokenCount(value); ok {
			u.set(kind, n)
		}
	}
	return u
}

// messageStruct is a Messages API message as encoding/json decodes it.
type messageStruct struct {
	Model json.RawMessage `json:"model"`
	Usage json.RawMessage `json:"usage"`
}

// decodeMessage is parseMessage with encoding/json.
func decodeMessage(body []byte) responseInfo {
	var m messageStruct
	if json.Unmarshal(body, &m) != nil {
		return responseInfo{}
	}
	model, _ := decodeString(m.Model)
	return responseInfo{model: model, usage: decodeUsage(m.Usage)}
}

// decodeEvent is sseScanner.handleEvent with encoding/json, on a scanner
// that has seen no event before.
func decodeEvent(data []byte) sseScanner {
	var s sseScanner
	if !bytes.Contains(data, []byte("message_start")) && !bytes.Contains(data, []byte("message_delta")) {
		return s
	}
	var event struct {
		Type    json.RawMessage `json:"type"`
		Message json.RawMessage `json:"message"`
		Usage   json.RawMessage `json:"usage"`
	}
	if json.Unmarshal(data, &event) != nil {
		return s
	}
	typ, _ := decodeString(event.Type)
	switch typ {
	case "message_start":
		var m messageStruct
		_ = json.Unmarshal(event.Message, &m)
		s.model, _ = decodeString(m.Model)
		s.start = decodeUsage(m.Usage)
	case "message_delta":
		s.delta = decodeUsage(event.Usage)
	}
	return s
}

// decodeRequestFields is requestFields with encoding/json.
func decodeRequestFields(body []byte) (map[string]json.RawMessage, bool) {
	var all map[string]json.RawMessage
	if json.Unmarshal(body, &all) != nil || all == nil {
		return nil, false
	}
	fields := map[string]json.RawMessage{}
	for _, name := range classifiedFields {
		if v, ok := all[name]; ok {
			fields[name] = v
		}
	}
	return fields, true
}

// jsonScanSeeds are JSON texts, valid and not, that exercise what the
// readers must get right: key case and escapes, duplicates, white space,
// nesting, strings with brackets and quotes, and values of every type.
var jsonScanSeeds = []string{
	`{"model":"deepseek-chat","usage":{"input_tokens":120,"output_tokens":42,"cache_read_input_tokens":20}}`,
	`{"type":"message_start","message":{"model":"claude-sonnet-4","usage":{"input_tokens":5,"output_tokens":1}}}`,
	`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":42}}`,
	` { "MODEL" : "m" , "Usage" : { "INPUT_TOKENS" : 7 } } `,
	`{"mod\u0065l":"x","\u0075sage":{"input_to\u212aens":3}}`,
	`{"model":"a","model":"b","usage":{"input_tokens":1},"usage":{"output_tokens":2}}`,
	`{"model":"a","model":null,"usage":{"input_tokens":1,"input_tokens":"x"}}`,
	`{"model":"q\"uote\\ and \u00e9","usage":[1,{"input_tokens":2}]}`,
	`{"model":"{[}]\"","usage":{"output_tokens":1e3,"input_tokens":-0.5}}`,
	`{"model":"claude-3-5-haiku","messages":[{"role":"user","content":"hi"},{"role":"user","content":[{"type":"text","text":"x"}]}],"system":[{"type":"text","text":"s"}],"tools":[{"name":"web_search","type":"web_search_20250305"}],"thinking":{"type":"enabled"}}`,
	`{"messages":"not an array","system":"You are helpful.","tools":{},"thinking":0}`,
	"{\"model\":\"\xff\xfe\",\"usage\":{}}",
	"{\t\"model\"\r\n:\n\"m\"\t}",
	`{}`, `[]`, `[1, "two", {"three":3}, [4]]`, `null`, `"string"`, `42`, `true`,
	`{"model":`, `{"model":"m"`, `{"model" "m"}`, `{"a":1,}`, ``, ` `,
}

func TestJSONStringMatchesDecode(t *testing.T) {
	for _, raw := range []string{`"plain"`, ` "spaced" `, `"esc\n\u00e9"`, "\"bad\xffutf8\"", `"a"b"`, `"`, `""`, `5`, `null`, ``, `"ctl` + "\x01" + `"`} {
		t.Run(raw, func(t *testing.T) {
			want, wantOK := decodeString(json.RawMessage(raw))
			got, ok := jsonString(json.RawMessage(raw))
			assert.Equal(t, wantOK, ok, "ok")
			assert.Equal(t, want, got, "string")
		})
	}
}

func TestKeyMatchesFolding(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{`"usage"`, true},
		{`"USAGE"`, true},
		{`"\u0075sage"`, true},
		{`"u\u017Fage"`, true}, // LATIN SMALL LETTER LONG S folds to s
		{`"usages"`, false},
		{`"usag"`, false},
		{`"us\"age"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			assert.Equal(t, tt.want, keyMatches([]byte(tt.key), "usage"))
		})
	}
}

func TestKeyIsExact(t *testing.T) {
	assert.True(t, keyIs([]byte(`"model"`), "model"), "plain")
	assert.True(t, keyIs([]byte(`"mod\u0065l"`), "model"), "escaped")
	assert.False(t, keyIs([]byte(`"Model"`), "model"), "other case")
	assert.False(t, keyIs([]byte(`"models"`), "model"), "longer")
}

func TestReadersMatchDecodeOnSeeds(t *testing.T) {
	for _, seed := range jsonScanSeeds {
		t.Run(seed, func(t *testing.T) {
			checkReadersMatchDecode(t, []byte(seed))
		})
	}
}

// FuzzJSONReaders checks that the readers of jsonscan.go give what
// encoding/json gives, on any input that json.Valid accepts and on every
// member and element of it.
func FuzzJSONReaders(f *testing.F) {
	for _, seed := range jsonScanSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkReadersMatchDecode(t, data)
	})
}

// checkReadersMatchDecode compares the readers with the decode functions
// on data, and on each member and element of data when it is valid JSON.
// The readers must not panic on invalid data either.
func checkReadersMatchDecode(t *testing.T, data []byte) {
	t.Helper()
	require.Equal(t, decodeMessage(data), parseMessage(data), "parseMessage")

	gotFields, gotOK := requestFields(data)
	wantFields, wantOK := decodeRequestFields(data)
	require.Equal(t, wantOK, gotOK, "requestFields ok")
	require.Equal(t, len(wantFields), len(gotFields), "requestFields count")
	for name, want := range wantFields {
		require.Equal(t, string(want), string(gotFields[name]), "requestFields[%q]", name)
	}

	var got sseScanner
	got.handleEvent(data)
	want := decodeEvent(data)
	require.Equal(t, want.model, got.model, "event model")
	require.Equal(t, want.start, got.start, "event message_start usage")
	require.Equal(t, want.delta, got.delta, "event message_delta usage")

	if !json.Valid(data) {
		return
	}
	checkValidValueMatchesDecode(t, data, 0)
}

// checkValidValueMatchesDecode compares jsonString, jsonArray, parseUsage
// and messageFields with encoding/json on the valid value v and, down to
// a few levels, on its members and elements.
func checkValidValueMatchesDecode(t *testing.T, v []byte, depth int) {
	t.Helper()
	wantString, wantOK := decodeString(v)
	gotString, gotOK := jsonString(v)
	require.Equal(t, wantOK, gotOK, "jsonString ok of %s", v)
	require.Equal(t, wantString, gotString, "jsonString of %s", v)
	require.Equal(t, decodeUsage(v), parseUsage(v), "parseUsage of %s", v)

	var m messageStruct
	_ = json.Unmarshal(v, &m)
	model, usage := messageFields(v)
	require.Equal(t, string(m.Model), string(model), "messageFields model of %s", v)
	require.Equal(t, string(m.Usage), string(usage), "messageFields usage of %s", v)

	wantElems := decodeArray(v)
	gotElems := jsonArray(v)
	require.Equal(t, len(wantElems), len(gotElems), "jsonArray length of %s", v)
	for i := range wantElems {
		require.Equal(t, string(wantElems[i]), string(gotElems[i]), "jsonArray element %d of %s", i, v)
	}

	if depth == 4 {
		return
	}
	for _, elem := range gotElems {
		checkValidValueMatchesDecode(t, elem, depth+1)
	}
	var members map[string]json.RawMessage
	if json.Unmarshal(v, &members) == nil {
		for _, member := range members {
			checkValidValueMatchesDecode(t, member, depth+1)
		}
	}
}
