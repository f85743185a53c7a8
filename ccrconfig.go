package ccrusage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
)

// DefaultLongContextThreshold is the token count above which CCR routes a
// request to Router.longContext when the config sets no
// longContextThreshold (CCR 1.0.73 and 2.0.0).
const DefaultLongContextThreshold = 60000

// CCRConfig is the part of a claude-code-router (CCR) config.json that
// determines which provider and task type a request is routed to: the providers
// and their models, the Router and the fallback lists. Load one with
// LoadCCRConfig or ParseCCRConfig.
//
// A CCRConfig never contains the providers' api_key values nor CCR's own
// APIKEY: the loader does not decode them. A nil *CCRConfig is valid and
// has no providers and no routes.
type CCRConfig struct {
	// Providers are the entries of Providers, in file order. Entries
	// without a name are left out.
	Providers []CCRProvider
	// Router contains the Router entries, each "provider,model".
	Router CCRRouter
	// LongContextThreshold is Router.longContextThreshold in tokens, or
	// DefaultLongContextThreshold when the file sets none or sets 0.
	LongContextThreshold int64
	// Fallback maps a task type, such as "default", to the
	// "provider,model" entries that CCR 2.x tries in order when the routed
	// provider returns an HTTP error.
	Fallback map[string][]string
}

// CCRProvider is one entry of a CCR config's Providers list.
type CCRProvider struct {
	// Name is the provider's name, as "provider,model" strings spell it.
	Name string
	// APIBaseURL is the upstream endpoint that CCR posts to.
	APIBaseURL string
	// Models are the model names that the provider serves.
	Models []string
}

// CCRRouter contains the Router entries of a CCR config. Each is a
// "provider,model" string, or empty when the file does not set it.
type CCRRouter struct {
	Default     string
	Background  string
	Think       string
	LongContext string
	WebSearch   string
	Image       string
}

// ccrConfigFile is the decoding target for config.json. It has no field
// for api_key or APIKEY, so encoding/json skips those values.
type ccrConfigFile struct {
	// CCR 2.0.0 reads Providers, or providers when Providers is absent
	// or null.
	Providers      *[]ccrProviderFile  `json:"Providers"`
	ProvidersLower *[]ccrProviderFile  `json:"providers"`
	Router         *ccrRouterFile      `json:"Router"`
	Fallback       map[string][]string `json:"fallback"`
}

type ccrProviderFile struct {
	Name       string   `json:"name"`
	APIBaseURL string   `json:"api_base_url"`
	Models     []string `json:"models"`
}

type ccrRouterFile struct {
	Default              string          `json:"default"`
	Background           string          `json:"background"`
	Think                string          `json:"think"`
	LongContext          string          `json:"longContext"`
	WebSearch            string          `json:"webSearch"`
	Image                string          `json:"image"`
	LongContextThreshold json.RawMessage `json:"longContextThreshold"`
}

// LoadCCRConfig reads and parses the CCR config file at path, as
// ParseCCRConfig does with os.Getenv. An error names the path, and wraps
// fs.ErrNotExist when the file does not exist.
func LoadCCRConfig(path string) (*CCRConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ccrusage: read CCR config: %w", err)
	}
	cfg, err := parseCCRConfig(data, os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("ccrusage: invalid CCR config %s: %w", path, err)
	}
	return cfg, nil
}

// ParseCCRConfig parses the contents of a CCR config.json. Like CCR, it
// accepts // and /* */ comments and trailing commas, and replaces $NAME and
// ${NAME} in string values with getenv(NAME). A nil getenv means os.Getenv.
// As in CCR, $NAME matches only upper-case letters, digits and
// underscores, and a reference whose variable is unset or empty is kept as
// written.
//
// Only Router.longContextThreshold sets the threshold: a top-level
// longContextThreshold is ignored, as CCR 1.0.73 and 2.0.0 ignore it. An
// error gives the line and column of invalid JSON and of a value of the
// wrong type.
func ParseCCRConfig(data []byte, getenv func(string) string) (*CCRConfig, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	cfg, err := parseCCRConfig(data, getenv)
	if err != nil {
		return nil, fmt.Errorf("ccrusage: invalid CCR config: %w", err)
	}
	return cfg, nil
}

func parseCCRConfig(data []byte, getenv func(string) string) (*CCRConfig, error) {
	strict, err := stripJSON5(data)
	if err != nil {
		return nil, err
	}
	var file ccrConfigFile
	if err := json.Unmarshal(strict, &file); err != nil {
		return nil, describeJSONError(data, err)
	}
	if string(bytes.TrimSpace(strict)) == "null" {
		return nil, errors.New("the config is null, expected an object")
	}

	expand := func(s string) string { return expandEnv(s, getenv) }
	cfg := &CCRConfig{LongContextThreshold: DefaultLongContextThreshold}

	providers := file.Providers
	if providers == nil {
		providers = file.ProvidersLower
	}
	if providers != nil {
		for _, p := range *providers {
			name := expand(p.Name)
			if name == "" {
				continue
			}
			models := make([]string, len(p.Models))
			for i, m := range p.Models {
				models[i] = expand(m)
			}
			cfg.Providers = append(cfg.Providers, CCRProvider{Name: name, APIBaseURL: expand(p.APIBaseURL), Models: models})
		}
	}

	if r := file.Router; r != nil {
		cfg.Router = CCRRouter{
			Default:     expand(r.Default),
			Background:  expand(r.Background),
			Think:       expand(r.Think),
			LongContext: expand(r.LongContext),
			WebSearch:   expand(r.WebSearch),
			Image:       expand(r.Image),
		}
		threshold, err := parseThreshold(r.LongContextThreshold, expand)
		if err != nil {
			return nil, err
		}
		if threshold > 0 {
			cfg.LongContextThreshold = threshold
		}
	}

	if len(file.Fallback) > 0 {
		cfg.Fallback = make(map[string][]string, len(file.Fallback))
		for task, entries := range file.Fallback {
			expanded := make([]string, len(entries))
			for i, e := range entries {
				expanded[i] = expand(e)
			}
			cfg.Fallback[task] = expanded
		}
	}
	return cfg, nil
}

// parseThreshold reads Router.longContextThreshold: a non-negative number
// of tokens, or a string holding one (after $NAME expansion). Absent, null,
// false and "" mean 0, the default, as they do in CCR's
// `longContextThreshold || 60000`. A fraction is rounded down, which gives
// the same comparison with an integer token count.
func parseThreshold(raw json.RawMessage, expand func(string) string) (int64, error) {
	text := strings.TrimSpace(string(raw))
	switch text {
	case "", "null", "false", `""`:
		return 0, nil
	}
	if text[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, fmt.Errorf("invalid Router.longContextThreshold %s: %w", text, err)
		}
		text = strings.TrimSpace(expand(s))
		if text == "" {
			return 0, nil
		}
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid Router.longContextThreshold %s: expected a non-negative number of tokens", text)
	}
	return int64(f), nil
}

// describeJSONError adds the line and column to a syntax or type error
// from encoding/json, computed on the original data.
func describeJSONError(data []byte, err error) error {
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		// Offset counts the bytes read, including the one that failed.
		line, column := position(data, int(syntaxErr.Offset)-1)
		return fmt.Errorf("line %d, column %d: %w", line, column, err)
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		// Offset is just past the value. The message of err names Go
		// types, which mean nothing to the author of the file, so it is
		// not repeated.
		line, column := position(data, int(typeErr.Offset)-1)
		field := typeErr.Field
		if field == "" {
			field = "the config"
		}
		return fmt.Errorf("line %d, column %d: %s is a JSON %s, expected %s",
			line, column, field, typeErr.Value, jsonKind(typeErr.Type.Kind()))
	}
	return err
}

// jsonKind names the JSON value that a Go kind of the decoding target
// expects.
func jsonKind(kind reflect.Kind) string {
	switch kind {
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "an array"
	case reflect.Map, reflect.Struct, reflect.Pointer:
		return "an object"
	}
	return kind.String()
}

// envReference matches $NAME and ${NAME} as CCR's config interpolation
// does (the same expression in CCR 1.0.73 and 2.0.0).
var envReference = regexp.MustCompile(`\$\{([^}]+)\}|\$([A-Z_][A-Z0-9_]*)`)

// expandEnv replaces each $NAME and ${NAME} in s with getenv(NAME), keeping
// the reference as written when the value is empty.
func expandEnv(s string, getenv func(string) string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	return envReference.ReplaceAllStringFunc(s, func(ref string) string {
		name := strings.TrimPrefix(ref, "$")
		if strings.HasPrefix(name, "{") {
			name = name[1 : len(name)-1]
		}
		if v := getenv(name); v != "" {
			return v
		}
		return ref
	})
}

// ProviderForModel returns the name of the first provider, in file order,
// whose models list model, compared exactly. It reports false when no
// provider lists it. To tell which provider served a response whose model
// several providers list, Transport first prefers the routed provider and
// then the task's fallback entries (see Transport).
func (c *CCRConfig) ProviderForModel(model string) (string, bool) {
	if c == nil || model == "" {
		return "", false
	}
	for _, p := range c.Providers {
		if p.lists(model) {
			return p.Name, true
		}
	}
	return "", false
}

func (p CCRProvider) lists(model string) bool {
	for _, m := range p.Models {
		if m == model {
			return true
		}
	}
	return false
}

// provider returns the provider named name, if the config lists it.
func (c *CCRConfig) provider(name string) (CCRProvider, bool) {
	if c == nil {
		return CCRProvider{}, false
	}
	for _, p := range c.Providers {
		if p.Name == name {
			return p, true
		}
	}
	return CCRProvider{}, false
}

// Route returns the provider and model of the Router entry for task, or of
// Router.default when the config sets no entry for task. An entry without
// a comma names only a model, whose provider is looked up with
// ProviderForModel. Route reports false when neither entry is set or the
// provider cannot be determined.
func (c *CCRConfig) Route(task string) (provider, model string, ok bool) {
	entry := c.routerEntry(task)
	if entry == "" {
		entry = c.routerEntry(TaskDefault)
	}
	if entry == "" {
		return "", "", false
	}
	provider, model = c.splitModel(entry)
	return provider, model, provider != ""
}

// routerEntry returns the Router entry for task, or "" when it is not set.
func (c *CCRConfig) routerEntry(task string) string {
	if c == nil {
		return ""
	}
	switch task {
	case TaskDefault:
		return c.Router.Default
	case TaskBackground:
		return c.Router.Background
	case TaskThink:
		return c.Router.Think
	case TaskLongContext:
		return c.Router.LongContext
	case TaskWebSearch:
		return c.Router.WebSearch
	case TaskImage:
		return c.Router.Image
	}
	return ""
}

// splitModel splits a "provider,model" string at its first comma, as CCR
// does for Router and fallback entries. A string without a comma is a bare
// model name; its provider is the one ProviderForModel returns, or "".
func (c *CCRConfig) splitModel(s string) (provider, model string) {
	if p, m, found := strings.Cut(s, ","); found {
		return p, m
	}
	provider, _ = c.ProviderForModel(s)
	return provider, s
}

// servingProvider returns the provider that most likely served a response
// whose model field is model, for a request routed to routed for task. In
// order: the routed provider if it lists model; the first fallback entry
// of task with that model; the first provider that lists model. It
// returns routed when the config does not list routed (ProviderUnknown, or
// a name set with WithRoute) or no provider lists model, so that an
// unrecognized name never moves usage to another provider.
func (c *CCRConfig) servingProvider(model, routed, task string) string {
	p, ok := c.provider(routed)
	if !ok || model == "" || p.lists(model) {
		return routed
	}
	for _, entry := range c.Fallback[task] {
		if p, m, found := strings.Cut(entry, ","); found && m == model && p != "" {
			return p
		}
	}
	if p, ok := c.ProviderForModel(model); ok {
		return p
	}
	return routed
}
