package ccrusage

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
)

// The tags that name a subagent's model at the start of system[1].text.
// CCR routes the request to the "provider,model" between them.
const (
	subagentOpenTag  = "<CCR-SUBAGENT-MODEL>"
	subagentCloseTag = "</CCR-SUBAGENT-MODEL>"
)

// route is the provider and task type that a request is recorded under.
type route struct {
	provider string
	task     string
	// estimate is the estimated input tokens: messages, system and tools.
	estimate int64
	// named reports whether the request itself names the provider, through
	// a "provider,model" model or a subagent tag.
	named bool
}

// routeKey is the context key of the route that WithRoute sets.
type routeKey struct{}

type routeOverride struct {
	provider string
	task     string
}

// WithRoute returns a copy of ctx that makes Transport record a request
// sent with it under provider and task instead of the ones it classifies.
// An empty provider or task is classified as usual. A task set without a
// provider takes the provider of the request's "provider,model" string if
// it has one, else of the CCR config's Router entry for that task, else of
// Router.default, else ProviderUnknown. The override applies only to
// requests that Transport counts (POST to a path ending in /v1/messages).
func WithRoute(ctx context.Context, provider, task string) context.Context {
	return context.WithValue(ctx, routeKey{}, routeOverride{provider: provider, task: task})
}

// applyOverride replaces r's provider and task with those set on ctx with
// WithRoute.
func applyOverride(ctx context.Context, cfg *CCRConfig, r route) route {
	o, ok := ctx.Value(routeKey{}).(routeOverride)
	if !ok {
		return r
	}
	if o.task != "" {
		r.task = o.task
		if !r.named {
			r.provider = routedProvider(cfg, o.task)
		}
	}
	if o.provider != "" {
		r.provider = o.provider
		r.named = true
	}
	return r
}

// classify returns the route that CCR 2.0.0's Router picks for a Messages
// API request body, checking in CCR's order:
//
//  1. a model with a comma, "provider,model", names the provider (task
//     default);
//  2. longContext, when the estimated input tokens exceed threshold;
//  3. a <CCR-SUBAGENT-MODEL>provider,model</CCR-SUBAGENT-MODEL> tag at the
//     start of system[1].text names the provider (task default);
//  4. background, when the model contains both "claude" and "haiku";
//  5. webSearch, when a tool's type starts with "web_search";
//  6. think, when the thinking field is present and not null, false, 0
//     or "" (JavaScript truthiness, so {"type":"disabled"} counts);
//  7. default.
//
// As in CCR, rules 2 and 4 to 6 apply only when cfg sets the Router entry
// for their task. A nil cfg applies them all. A model that is missing or
// not a string goes to default, as CCR's router does when it fails. The
// provider of a task is the one of its Router entry (see
// CCRConfig.Route), or ProviderUnknown. A threshold of zero or less means
// cfg's LongContextThreshold.
//
// classify reports false when body is not a JSON object.
//
// NOTE: CCR counts tokens with tiktoken (cl100k_base), but the estimate
// here is EstimateTokens of the same text, so requests near the threshold
// can be classified differently. CCR also routes to longContext when the same
// session's previous streamed response reported more input tokens than
// the threshold and the request counts over 20,000. It can also read a
// per-project Router. Neither is modelled here.
func classify(cfg *CCRConfig, body []byte, threshold int64) (route, bool) {
	fields, ok := requestFields(body)
	if !ok {
		return route{}, false
	}
	r := route{estimate: EstimateTokens(requestText(fields))}

	model, ok := jsonString(fields["model"])
	if !ok {
		r.task = TaskDefault
		r.provider = routedProvider(cfg, TaskDefault)
		return r, true
	}
	if name, _, found := strings.Cut(model, ","); found {
		r.task = TaskDefault
		r.provider = explicitProvider(cfg, name)
		r.named = true
		return r, true
	}

	if threshold <= 0 {
		threshold = DefaultLongContextThreshold
		if cfg != nil {
			threshold = cfg.LongContextThreshold
		}
	}
	if r.estimate > threshold && routes(cfg, TaskLongContext) {
		r.task = TaskLongContext
		r.provider = routedProvider(cfg, TaskLongContext)
		return r, true
	}
	if tagged, ok := subagentModel(fields["system"]); ok {
		r.task = TaskDefault
		r.provider, _ = cfg.splitModel(tagged)
		if r.provider == "" {
			r.provider = ProviderUnknown
		}
		r.named = true
		return r, true
	}

	switch {
	case strings.Contains(model, "claude") && strings.Contains(model, "haiku") && routes(cfg, TaskBackground):
		r.task = TaskBackground
	case hasWebSearchTool(fields["tools"]) && routes(cfg, TaskWebSearch):
		r.task = TaskWebSearch
	case truthy(fields["thinking"]) && routes(cfg, TaskThink):
		r.task = TaskThink
	default:
		r.task = TaskDefault
	}
	r.provider = routedProvider(cfg, r.task)
	return r, true
}

// classifiedFields are the members of a request body that classify and
// requestText read.
var classifiedFields = [...]string{"model", "messages", "system", "tools", "thinking"}

// requestFields returns the members of a request body that classify
// reads, as json.Unmarshal into a map[string]json.RawMessage would give
// them: keys match exactly once unescaped, and the last of duplicate keys
// wins (a fuzz test compares the two). The values are slices of body, not
// copies. It reports false when body is not valid JSON or not an object.
func requestFields(body []byte) (map[string]json.RawMessage, bool) {
	if !json.Valid(body) {
		return nil, false
	}
	obj, ok := newObjectReader(body)
	if !ok {
		return nil, false
	}
	fields := make(map[string]json.RawMessage, len(classifiedFields))
	for {
		key, value, ok := obj.next()
		if !ok {
			return fields, true
		}
		for _, name := range classifiedFields {
			if keyIs(key, name) {
				fields[name] = value
				break
			}
		}
	}
}

// routes reports whether a classification rule for task applies: CCR
// checks a rule only when its Router entry is set.
func routes(cfg *CCRConfig, task string) bool {
	return cfg == nil || cfg.routerEntry(task) != ""
}

// routedProvider returns the provider of task's Router entry, or of
// Router.default, or ProviderUnknown.
func routedProvider(cfg *CCRConfig, task string) string {
	if p, _, ok := cfg.Route(task); ok {
		return p
	}
	return ProviderUnknown
}

// explicitProvider returns the provider named in a "provider,model" model
// string. CCR compares the name with the lower-cased provider names of its
// config and routes to the provider under its configured spelling. A name
// that matches no provider is kept as written.
func explicitProvider(cfg *CCRConfig, name string) string {
	if name == "" {
		return ProviderUnknown
	}
	if cfg != nil {
		for _, p := range cfg.Providers {
			if strings.ToLower(p.Name) == name {
				return p.Name
			}
		}
	}
	return name
}

// subagentModel returns the text between the subagent tags when
// system[1].text starts with the opening tag and a closing tag follows.
func subagentModel(system json.RawMessage) (string, bool) {
	blocks := jsonArray(system)
	if len(blocks) < 2 {
		return "", false
	}
	var second struct {
		Text json.RawMessage `json:"text"`
	}
	_ = json.Unmarshal(blocks[1], &second)
	text, ok := jsonString(second.Text)
	if !ok || !strings.HasPrefix(text, subagentOpenTag) {
		return "", false
	}
	inner, _, found := strings.Cut(text[len(subagentOpenTag):], subagentCloseTag)
	return inner, found
}

func hasWebSearchTool(tools json.RawMessage) bool {
	for _, raw := range jsonArray(tools) {
		var tool struct {
			Type json.RawMessage `json:"type"`
		}
		_ = json.Unmarshal(raw, &tool)
		if t, ok := jsonString(tool.Type); ok && strings.HasPrefix(t, "web_search") {
			return true
		}
	}
	return false
}

// truthy reports whether a JSON value is truthy in JavaScript, which is how
// CCR tests the thinking field: absent, null, false, 0 and "" are not.
func truthy(raw json.RawMessage) bool {
	v := bytes.TrimSpace(raw)
	if len(v) == 0 {
		return false
	}
	switch v[0] {
	case 'n', 'f':
		return false
	case 't', '{', '[':
		return true
	case '"':
		return string(v) != `""`
	}
	// A number. A value too small for a float64 rounds to zero, as in
	// JavaScript, and the range error is irrelevant.
	f, _ := strconv.ParseFloat(string(v), 64)
	return f != 0
}

// requestText returns the text that CCR counts toward a request's input
// tokens: message contents (text blocks, tool_use inputs and tool_result
// contents), system text, and each tool's name with its description and its
// input_schema. JSON values are counted in their compact encoding, as
// CCR's JSON.stringify gives them.
func requestText(fields map[string]json.RawMessage) string {
	var b strings.Builder

	for _, raw := range jsonArray(fields["messages"]) {
		var msg struct {
			Content json.RawMessage `json:"content"`
		}
		_ = json.Unmarshal(raw, &msg)
		if s, ok := jsonString(msg.Content); ok {
			b.WriteString(s)
			continue
		}
		for _, block := range jsonArray(msg.Content) {
			writeContentBlock(&b, block)
		}
	}

	if s, ok := jsonString(fields["system"]); ok {
		b.WriteString(s)
	}
	for _, raw := range jsonArray(fields["system"]) {
		var block struct {
			Type string          `json:"type"`
			Text json.RawMessage `json:"text"`
		}
		_ = json.Unmarshal(raw, &block)
		if block.Type != "text" {
			continue
		}
		if s, ok := jsonString(block.Text); ok {
			b.WriteString(s)
		}
		for _, part := range jsonArray(block.Text) {
			s, _ := jsonString(part)
			b.WriteString(s)
		}
	}

	for _, raw := range jsonArray(fields["tools"]) {
		var tool struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			InputSchema json.RawMessage `json:"input_schema"`
		}
		_ = json.Unmarshal(raw, &tool)
		if tool.Description != "" {
			b.WriteString(tool.Name)
			b.WriteString(tool.Description)
		}
		if truthy(tool.InputSchema) {
			writeCompact(&b, tool.InputSchema)
		}
	}
	return b.String()
}

func writeContentBlock(b *strings.Builder, raw json.RawMessage) {
	var block struct {
		Type    string          `json:"type"`
		Text    json.RawMessage `json:"text"`
		Input   json.RawMessage `json:"input"`
		Content json.RawMessage `json:"content"`
	}
	_ = json.Unmarshal(raw, &block)
	switch block.Type {
	case "text":
		s, _ := jsonString(block.Text)
		b.WriteString(s)
	case "tool_use":
		writeCompact(b, block.Input)
	case "tool_result":
		if s, ok := jsonString(block.Content); ok {
			b.WriteString(s)
		} else {
			writeCompact(b, block.Content)
		}
	}
}

func writeCompact(b *strings.Builder, raw json.RawMessage) {
	if len(raw) == 0 {
		return
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) == nil {
		b.Write(buf.Bytes())
	}
}
