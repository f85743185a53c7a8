package ccrusage

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// longText is about 2,500 tokens by EstimateTokens, above the 2000-token
// threshold of testConfigJSON.
var longText = strings.Repeat("word ", 2000)

// messagesBody returns a Messages API request body with the given model
// and extra top-level members, written as JSON.
func messagesBody(model string, extra ...string) string {
	members := append([]string{fmt.Sprintf(`"model":%q`, model), `"max_tokens":64`,
		`"messages":[{"role":"user","content":"hello"}]`}, extra...)
	return "{" + strings.Join(members, ",") + "}"
}

func decodeFields(t *testing.T, body string) map[string]json.RawMessage {
	t.Helper()
	var fields map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(body), &fields))
	return fields
}

func TestClassifyRules(t *testing.T) {
	cfg := mustParseConfig(t, testConfigJSON)
	long := fmt.Sprintf(`"system":%q`, longText)
	subagent := `"system":[{"type":"text","text":"You are Claude Code."},{"type":"text","text":"<CCR-SUBAGENT-MODEL>openrouter,anthropic/claude-sonnet-4</CCR-SUBAGENT-MODEL>Review the diff."}]`
	webSearch := `"tools":[{"name":"web_search","type":"web_search_20250305"}]`
	thinking := `"thinking":{"type":"enabled","budget_tokens":1024}`
	const sonnet, haiku = "claude-sonnet-4-20250514", "claude-3-5-haiku-20241022"

	tests := []struct {
		name         string
		body         string
		wantTask     string
		wantProvider string
	}{
		{"default", messagesBody(sonnet), TaskDefault, "deepseek"},
		{"explicit provider", messagesBody("gemini,gemini-2.5-pro"), TaskDefault, "gemini"},
		{"explicit beats long context", messagesBody("gemini,gemini-2.5-pro", long), TaskDefault, "gemini"},
		{"explicit beats haiku and thinking", messagesBody("anthropic,"+haiku, thinking), TaskDefault, "anthropic"},
		{"explicit unlisted provider", messagesBody("custom,model"), TaskDefault, "custom"},
		{"explicit empty provider", messagesBody(",model"), TaskDefault, ProviderUnknown},
		{"long context", messagesBody(sonnet, long), TaskLongContext, "gemini"},
		{"long context beats subagent", messagesBody(sonnet, `"messages":[{"role":"user","content":`+fmt.Sprintf("%q", longText)+`}]`, subagent), TaskLongContext, "gemini"},
		{"long context beats haiku", messagesBody(haiku, long, thinking, webSearch), TaskLongContext, "gemini"},
		{"subagent", messagesBody(sonnet, subagent), TaskDefault, "openrouter"},
		{"subagent beats haiku", messagesBody(haiku, subagent), TaskDefault, "openrouter"},
		{"background", messagesBody(haiku), TaskBackground, "gemini"},
		{"background beats thinking", messagesBody(haiku, thinking), TaskBackground, "gemini"},
		{"background beats web search", messagesBody(haiku, webSearch), TaskBackground, "gemini"},
		{"haiku without claude", messagesBody("haiku-lite"), TaskDefault, "deepseek"},
		{"haiku case sensitive", messagesBody("Claude-3-Haiku"), TaskDefault, "deepseek"},
		{"web search", messagesBody(sonnet, webSearch), TaskWebSearch, "openrouter"},
		{"web search beats thinking", messagesBody(sonnet, webSearch, thinking), TaskWebSearch, "openrouter"},
		{"other tool type", messagesBody(sonnet, `"tools":[{"name":"bash","type":"bash_20250124"}]`), TaskDefault, "deepseek"},
		{"think", messagesBody(sonnet, thinking), TaskThink, "deepseek"},
		{"think disabled", messagesBody(sonnet, `"thinking":{"type":"disabled"}`), TaskThink, "deepseek"},
		{"model missing", `{"messages":[],"thinking":{"type":"enabled"}}`, TaskDefault, "deepseek"},
		{"model not a string", `{"model":5,"thinking":true}`, TaskDefault, "deepseek"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := classify(cfg, []byte(tt.body), 0)
			require.True(t, ok)
			assert.Equal(t, tt.wantTask, r.task)
			assert.Equal(t, tt.wantProvider, r.provider)
		})
	}
}

func TestClassifyThinkingTruthiness(t *testing.T) {
	cfg := mustParseConfig(t, testConfigJSON)
	tests := []struct {
		value string
		want  string
	}{
		{`{"type":"enabled","budget_tokens":1024}`, TaskThink},
		{`{"type":"disabled"}`, TaskThink},
		{`{}`, TaskThink},
		{`[]`, TaskThink},
		{`true`, TaskThink},
		{`1`, TaskThink},
		{`-0.5`, TaskThink},
		{`"no"`, TaskThink},
		{`null`, TaskDefault},
		{`false`, TaskDefault},
		{`0`, TaskDefault},
		{`-0`, TaskDefault},
		{`0.0e10`, TaskDefault},
		{`1e-400`, TaskDefault},
		{`""`, TaskDefault},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			r, ok := classify(cfg, []byte(messagesBody("claude-sonnet-4", `"thinking":`+tt.value)), 0)
			require.True(t, ok)
			assert.Equal(t, tt.want, r.task)
		})
	}
}

func TestClassifySubagentTag(t *testing.T) {
	cfg := mustParseConfig(t, testConfigJSON)
	system := func(blocks ...string) string { return `"system":[` + strings.Join(blocks, ",") + `]` }
	text := func(s string) string { return fmt.Sprintf(`{"type":"text","text":%q}`, s) }
	const tag = "<CCR-SUBAGENT-MODEL>gemini,gemini-2.5-pro</CCR-SUBAGENT-MODEL>"

	tests := []struct {
		name         string
		system       string
		wantProvider string
	}{
		{"second block", system(text("a"), text(tag+"rest")), "gemini"},
		{"multi-line content", system(text("a"), text("<CCR-SUBAGENT-MODEL>gemini,\ngemini-2.5-pro</CCR-SUBAGENT-MODEL>")), "gemini"},
		{"bare model", system(text("a"), text("<CCR-SUBAGENT-MODEL>deepseek-reasoner</CCR-SUBAGENT-MODEL>")), "deepseek"},
		{"unlisted bare model", system(text("a"), text("<CCR-SUBAGENT-MODEL>gpt-4o</CCR-SUBAGENT-MODEL>")), ProviderUnknown},
		{"first block ignored", system(text(tag)), "deepseek"},
		{"not at start", system(text("a"), text(" "+tag)), "deepseek"},
		{"never closed", system(text("a"), text("<CCR-SUBAGENT-MODEL>gemini,gemini-2.5-pro")), "deepseek"},
		{"system string", fmt.Sprintf(`"system":%q`, tag), "deepseek"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := classify(cfg, []byte(messagesBody("claude-sonnet-4", tt.system)), 0)
			require.True(t, ok)
			assert.Equal(t, TaskDefault, r.task)
			assert.Equal(t, tt.wantProvider, r.provider)
		})
	}
}

func TestClassifyThreshold(t *testing.T) {
	cfg := mustParseConfig(t, testConfigJSON)
	body := []byte(messagesBody("claude-sonnet-4", `"system":"`+strings.Repeat("x", 4000)+`"`))
	r, ok := classify(cfg, body, 0)
	require.True(t, ok)
	require.Equal(t, int64(1002), r.estimate, "hello plus 4000 characters")

	tests := []struct {
		name      string
		cfg       *CCRConfig
		threshold int64
		want      string
	}{
		{"config threshold", mustParseConfig(t, `{"Router":{"longContext":"gemini,gemini-2.5-pro","longContextThreshold":1001}}`), 0, TaskLongContext},
		{"equal is not above", mustParseConfig(t, `{"Router":{"longContext":"gemini,gemini-2.5-pro","longContextThreshold":1002}}`), 0, TaskDefault},
		{"override lower", cfg, 1000, TaskLongContext},
		{"override higher", cfg, 5000, TaskDefault},
		{"default threshold", mustParseConfig(t, `{"Router":{"longContext":"gemini,gemini-2.5-pro"}}`), 0, TaskDefault},
		{"nil config", nil, 1000, TaskLongContext},
		{"no long context route", mustParseConfig(t, `{"Router":{"default":"deepseek,deepseek-chat"}}`), 1, TaskDefault},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := classify(tt.cfg, body, tt.threshold)
			require.True(t, ok)
			assert.Equal(t, tt.want, r.task)
		})
	}
}

func TestClassifyUnroutedRulesSkipped(t *testing.T) {
	cfg := mustParseConfig(t, `{"Router":{"default":"deepseek,deepseek-chat","think":"deepseek,deepseek-reasoner"}}`)
	tests := []struct {
		name string
		body string
		want string
	}{
		{"haiku without background", messagesBody("claude-3-5-haiku", `"thinking":{}`), TaskThink},
		{"web search without route", messagesBody("claude-sonnet-4", `"tools":[{"type":"web_search_20250305"}]`), TaskDefault},
		{"long context without route", messagesBody("claude-sonnet-4", fmt.Sprintf(`"system":%q`, strings.Repeat("x", 300000))), TaskDefault},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := classify(cfg, []byte(tt.body), 0)
			require.True(t, ok)
			assert.Equal(t, tt.want, r.task)
		})
	}
}

func TestClassifyNilConfig(t *testing.T) {
	tests := []struct {
		name         string
		body         string
		wantTask     string
		wantProvider string
	}{
		{"background", messagesBody("claude-3-5-haiku"), TaskBackground, ProviderUnknown},
		{"web search", messagesBody("claude-sonnet-4", `"tools":[{"type":"web_search_1"}]`), TaskWebSearch, ProviderUnknown},
		{"think", messagesBody("claude-sonnet-4", `"thinking":{"type":"enabled"}`), TaskThink, ProviderUnknown},
		{"explicit", messagesBody("deepseek,deepseek-chat"), TaskDefault, "deepseek"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := classify(nil, []byte(tt.body), 0)
			require.True(t, ok)
			assert.Equal(t, tt.wantTask, r.task)
			assert.Equal(t, tt.wantProvider, r.provider)
		})
	}
}

func TestClassifyExplicitProviderCase(t *testing.T) {
	cfg := mustParseConfig(t, `{"Providers":[{"name":"DeepSeek","models":["deepseek-chat"]}]}`)
	tests := []struct {
		model string
		want  string
	}{
		{"deepseek,deepseek-chat", "DeepSeek"},
		// CCR compares the lower-cased config name with the text as
		// written, so this request fails in CCR with 404.
		{"DeepSeek,deepseek-chat", "DeepSeek"},
		{"DEEPSEEK,deepseek-chat", "DEEPSEEK"},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			r, ok := classify(cfg, []byte(messagesBody(tt.model)), 0)
			require.True(t, ok)
			assert.Equal(t, tt.want, r.provider)
			assert.True(t, r.named)
		})
	}
}

func TestClassifyNotObject(t *testing.T) {
	for _, body := range []string{"", "null", "[]", `"text"`, "42", "{", "not json", `{"model":"a"} trailing`} {
		t.Run(body, func(t *testing.T) {
			_, ok := classify(nil, []byte(body), 0)
			assert.False(t, ok)
		})
	}
}

func TestRequestText(t *testing.T) {
	body := `{
	  "model": "claude-sonnet-4",
	  "messages": [
	    {"role": "user", "content": "plain"},
	    {"role": "assistant", "content": [
	      {"type": "text", "text": "T1"},
	      {"type": "tool_use", "id": "u1", "name": "read", "input": {"path": "/a", "n": 1}},
	      {"type": "image", "source": {"data": "ignored"}}
	    ]},
	    {"role": "user", "content": [
	      {"type": "tool_result", "tool_use_id": "u1", "content": "R1"},
	      {"type": "tool_result", "tool_use_id": "u2", "content": [{"type": "text", "text": "R2"}]}
	    ]}
	  ],
	  "system": [{"type": "text", "text": "S1"}, {"type": "text", "text": ["S2", "S3"]}, {"type": "other", "text": "ignored"}],
	  "tools": [
	    {"name": "read", "description": "Reads", "input_schema": {"type": "object"}},
	    {"name": "nodesc", "input_schema": null}
	  ]
	}`
	got := requestText(decodeFields(t, body))
	want := `plainT1{"path":"/a","n":1}R1[{"type":"text","text":"R2"}]S1S2S3readReads{"type":"object"}`
	assert.Equal(t, want, got)
}

func TestRequestTextSystemString(t *testing.T) {
	fields := decodeFields(t, `{"system":"You are helpful.","messages":"not an array","tools":{}}`)
	assert.Equal(t, "You are helpful.", requestText(fields))
}

func TestApplyOverride(t *testing.T) {
	cfg := mustParseConfig(t, testConfigJSON)
	classified := route{provider: "deepseek", task: TaskThink, estimate: 7}
	named := route{provider: "gemini", task: TaskDefault, estimate: 7, named: true}

	tests := []struct {
		name         string
		ctx          context.Context
		in           route
		wantProvider string
		wantTask     string
	}{
		{"none", context.Background(), classified, "deepseek", TaskThink},
		{"empty", WithRoute(context.Background(), "", ""), classified, "deepseek", TaskThink},
		{"provider", WithRoute(context.Background(), "custom", ""), classified, "custom", TaskThink},
		{"task", WithRoute(context.Background(), "", TaskBackground), classified, "gemini", TaskBackground},
		{"task without route", WithRoute(context.Background(), "", TaskImage), classified, "deepseek", TaskImage},
		{"task keeps named provider", WithRoute(context.Background(), "", TaskWebSearch), named, "gemini", TaskWebSearch},
		{"both", WithRoute(context.Background(), "p", "t"), named, "p", "t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := applyOverride(tt.ctx, cfg, tt.in)
			assert.Equal(t, tt.wantProvider, got.provider)
			assert.Equal(t, tt.wantTask, got.task)
			assert.Equal(t, int64(7), got.estimate)
		})
	}
}

func TestApplyOverrideTaskWithoutConfig(t *testing.T) {
	got := applyOverride(WithRoute(context.Background(), "", TaskThink), nil, route{provider: ProviderUnknown, task: TaskDefault})
	assert.Equal(t, ProviderUnknown, got.provider)
	assert.Equal(t, TaskThink, got.task)
}
