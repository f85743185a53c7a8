package ccrusage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// envMap returns a getenv function that reads only vars, so that tests do
// not depend on the host environment.
func envMap(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// testConfigJSON is a CCR config in the shape CCR's own examples use, with
// the JSON5 extensions CCR accepts.
const testConfigJSON = `{
  // CCR's own settings; the loader ignores them.
  "HOST": "127.0.0.1", "PORT": 3456, "APIKEY": "ccr-secret-apikey",
  "Providers": [
    {
      "name": "deepseek",
      "api_base_url": "${DEEPSEEK_URL}/v1/chat/completions", // interpolated
      "api_key": "$DEEPSEEK_API_KEY",
      "models": ["deepseek-chat", "deepseek-reasoner",],
    },
    { "name": "gemini", "api_base_url": "http://127.0.0.1:2/v1/chat/completions", "api_key": "literal-gemini-key",
      "models": ["gemini-2.5-flash", "gemini-2.5-pro"] },
    /* openrouter serves models under other providers' names too */
    { "name": "openrouter", "api_base_url": "http://127.0.0.1:3/v1/chat/completions", "api_key": "k",
      "models": ["google/gemini-2.5-flash", "anthropic/claude-sonnet-4", "gemini-2.5-flash"] },
    { "name": "anthropic", "api_base_url": "http://127.0.0.1:4/v1/messages", "api_key": "k",
      "models": ["claude-sonnet-4-20250514"], "transformer": { "use": ["Anthropic"] } },
  ],
  "Router": {
    "default": "deepseek,deepseek-chat",
    "background": "gemini,gemini-2.5-flash",
    "think": "deepseek,deepseek-reasoner",
    "longContext": "gemini,gemini-2.5-pro",
    "longContextThreshold": 2000,
    "webSearch": "openrouter,google/gemini-2.5-flash",
  },
  "fallback": { "default": ["openrouter,anthropic/claude-sonnet-4", "anthropic,claude-sonnet-4-20250514"] },
}`

var testConfigEnv = map[string]string{
	"DEEPSEEK_URL":     "http://127.0.0.1:1",
	"DEEPSEEK_API_KEY": "sk-deepseek-secret",
}

func mustParseConfig(t testing.TB, data string) *CCRConfig {
	t.Helper()
	cfg, err := ParseCCRConfig([]byte(data), envMap(testConfigEnv))
	require.NoError(t, err)
	return cfg
}

func TestParseCCRConfigFields(t *testing.T) {
	cfg := mustParseConfig(t, testConfigJSON)

	require.Len(t, cfg.Providers, 4)
	assert.Equal(t, CCRProvider{
		Name:       "deepseek",
		APIBaseURL: "http://127.0.0.1:1/v1/chat/completions",
		Models:     []string{"deepseek-chat", "deepseek-reasoner"},
	}, cfg.Providers[0])
	assert.Equal(t, "anthropic", cfg.Providers[3].Name)
	assert.Equal(t, CCRRouter{
		Default:     "deepseek,deepseek-chat",
		Background:  "gemini,gemini-2.5-flash",
		Think:       "deepseek,deepseek-reasoner",
		LongContext: "gemini,gemini-2.5-pro",
		WebSearch:   "openrouter,google/gemini-2.5-flash",
	}, cfg.Router)
	assert.Equal(t, int64(2000), cfg.LongContextThreshold)
	assert.Equal(t, map[string][]string{
		"default": {"openrouter,anthropic/claude-sonnet-4", "anthropic,claude-sonnet-4-20250514"},
	}, cfg.Fallback)
}

func TestParseCCRConfigKeepsNoAPIKey(t *testing.T) {
	cfg := mustParseConfig(t, testConfigJSON)

	for _, format := range []string{"%v", "%+v", "%#v"} {
		text := fmt.Sprintf(format, cfg) + fmt.Sprintf(format, *cfg)
		assert.NotContains(t, text, "sk-deepseek-secret", format)
		assert.NotContains(t, text, "DEEPSEEK_API_KEY", format)
		assert.NotContains(t, text, "literal-gemini-key", format)
		assert.NotContains(t, text, "ccr-secret-apikey", format)
	}
	encoded, err := json.Marshal(cfg)
	require.NoError(t, err)
	assert.NotContains(t, string(encoded), "secret")
}

func TestParseCCRConfigEnv(t *testing.T) {
	env := envMap(map[string]string{"HOST_PORT": "127.0.0.1:9", "lower": "x", "A": "1", "B": "2", "A_B": "3"})
	tests := []struct {
		name, in, want string
	}{
		{"dollar", "http://$HOST_PORT/v1", "http://127.0.0.1:9/v1"},
		{"braces", "http://${HOST_PORT}/v1", "http://127.0.0.1:9/v1"},
		{"braces lower case", "${lower}", "x"},
		{"dollar lower case kept", "$lower", "$lower"},
		{"unset kept", "$UNSET and ${UNSET}", "$UNSET and ${UNSET}"},
		{"adjacent", "${A}${B}", "12"},
		{"longest name", "$A_B", "3"},
		{"empty braces kept", "${}", "${}"},
		{"lone dollar", "cost $", "cost $"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := fmt.Sprintf(`{"Providers":[{"name":"p","models":[%q]}]}`, tt.in)
			cfg, err := ParseCCRConfig([]byte(data), env)
			require.NoError(t, err)
			require.Len(t, cfg.Providers, 1)
			assert.Equal(t, []string{tt.want}, cfg.Providers[0].Models)
		})
	}
}

func TestParseCCRConfigEnvEmptyValueKept(t *testing.T) {
	cfg, err := ParseCCRConfig([]byte(`{"Router":{"default":"$EMPTY"}}`), envMap(map[string]string{"EMPTY": ""}))
	require.NoError(t, err)
	assert.Equal(t, "$EMPTY", cfg.Router.Default)
}

func TestParseCCRConfigNilGetenvReadsEnvironment(t *testing.T) {
	t.Setenv("CCRUSAGE_TEST_ROUTE", "deepseek,deepseek-chat")
	cfg, err := ParseCCRConfig([]byte(`{"Router":{"default":"$CCRUSAGE_TEST_ROUTE"}}`), nil)
	require.NoError(t, err)
	assert.Equal(t, "deepseek,deepseek-chat", cfg.Router.Default)
}

func TestParseCCRConfigJSON5(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantURL string
	}{
		{"line comment", "{\"Providers\":[{\"name\":\"p\", // note\n\"api_base_url\":\"u\"}]}", "u"},
		{"block comment", "{/* a\n b */\"Providers\":[{\"name\":\"p\",\"api_base_url\":\"u\"}]}", "u"},
		{"trailing commas", `{"Providers":[{"name":"p","api_base_url":"u",},],}`, "u"},
		{"comma then comment", "{\"Providers\":[{\"name\":\"p\",\"api_base_url\":\"u\", // last\n}]}", "u"},
		{"slashes in string", `{"Providers":[{"name":"p","api_base_url":"http://h//x/*y*/"}]}`, "http://h//x/*y*/"},
		{"escaped quote in string", `{"Providers":[{"name":"p","api_base_url":"a\"//b"}]}`, `a"//b`},
		{"comma in string", `{"Providers":[{"name":"p","api_base_url":"a,}"}]}`, "a,}"},
		{"CRLF line comment", "{\"Providers\":[{\"name\":\"p\", // note\r\n\"api_base_url\":\"u\"}]}", "u"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseCCRConfig([]byte(tt.in), envMap(nil))
			require.NoError(t, err)
			require.Len(t, cfg.Providers, 1)
			assert.Equal(t, tt.wantURL, cfg.Providers[0].APIBaseURL)
		})
	}
}

func TestParseCCRConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"missing comma", "{\n  \"Router\": {\n    \"default\": \"a\"\n    \"think\": \"b\"\n  }\n}", []string{"line 4, column 5", "invalid character"}},
		{"unclosed block comment", "{\n  /* open\n}", []string{"line 2, column 3", "never closed"}},
		{"truncated", `{"Router": {`, []string{"line 1, column 12", "unexpected end"}},
		{"wrong type", "{\n\"Router\": {\"think\": 5}}", []string{"line 2", "Router.think is a JSON number, expected a string"}},
		{"models not array", `{"Providers":[{"name":"p","models":"m"}]}`, []string{"Providers.models is a JSON string, expected an array"}},
		{"negative threshold", `{"Router":{"longContextThreshold":-5}}`, []string{"invalid Router.longContextThreshold -5"}},
		{"threshold not a number", `{"Router":{"longContextThreshold":"many"}}`, []string{"invalid Router.longContextThreshold many"}},
		{"threshold object", `{"Router":{"longContextThreshold":{}}}`, []string{"invalid Router.longContextThreshold {}"}},
		{"single quotes", `{'Router': {}}`, []string{"line 1, column 2", "invalid character '\\''"}},
		{"array", `[1]`, []string{"line 1, column 1", "the config is a JSON array, expected an object"}},
		{"null", ` null `, []string{"the config is null, expected an object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCCRConfig([]byte(tt.in), envMap(nil))
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "ccrusage: invalid CCR config: "), err.Error())
			for _, want := range tt.want {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestParseCCRConfigSyntaxErrorWrapped(t *testing.T) {
	_, err := ParseCCRConfig([]byte(`{"Router": x}`), envMap(nil))
	var syntaxErr *json.SyntaxError
	assert.True(t, errors.As(err, &syntaxErr))
}

func TestParseCCRConfigThreshold(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int64
	}{
		{"absent", `{"Router":{}}`, DefaultLongContextThreshold},
		{"no router", `{}`, DefaultLongContextThreshold},
		{"zero means default", `{"Router":{"longContextThreshold":0}}`, DefaultLongContextThreshold},
		{"null", `{"Router":{"longContextThreshold":null}}`, DefaultLongContextThreshold},
		{"number", `{"Router":{"longContextThreshold":32000}}`, 32000},
		{"fraction rounds down", `{"Router":{"longContextThreshold":1000.9}}`, 1000},
		{"string from env", `{"Router":{"longContextThreshold":"$THRESHOLD"}}`, 1234},
		{"top level ignored", `{"longContextThreshold":100,"Router":{}}`, DefaultLongContextThreshold},
		{"router wins", `{"longContextThreshold":100,"Router":{"longContextThreshold":200}}`, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseCCRConfig([]byte(tt.in), envMap(map[string]string{"THRESHOLD": "1234"}))
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg.LongContextThreshold)
		})
	}
}

func TestParseCCRConfigProvidersKey(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"lower case", `{"providers":[{"name":"a"}]}`, []string{"a"}},
		{"upper case wins", `{"Providers":[{"name":"a"}],"providers":[{"name":"b"}]}`, []string{"a"}},
		{"null upper case", `{"Providers":null,"providers":[{"name":"b"}]}`, []string{"b"}},
		{"empty upper case wins", `{"Providers":[],"providers":[{"name":"b"}]}`, nil},
		{"nameless dropped", `{"Providers":[{"models":["m"]},{"name":"a"}]}`, []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseCCRConfig([]byte(tt.in), envMap(nil))
			require.NoError(t, err)
			var names []string
			for _, p := range cfg.Providers {
				names = append(names, p.Name)
			}
			assert.Equal(t, tt.want, names)
		})
	}
}

func TestLoadCCRConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"Router":{"default":"deepseek,deepseek-chat"}}`), 0o600))

	cfg, err := LoadCCRConfig(path)
	require.NoError(t, err)
	assert.Equal(t, "deepseek,deepseek-chat", cfg.Router.Default)
}

func TestLoadCCRConfigMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.json")
	_, err := LoadCCRConfig(path)
	require.Error(t, err)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.Contains(t, err.Error(), path)
	assert.True(t, strings.HasPrefix(err.Error(), "ccrusage: read CCR config: "), err.Error())
}

func TestLoadCCRConfigInvalidNamesPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	require.NoError(t, os.WriteFile(path, []byte("{\n  \"Router\": [\n}"), 0o600))

	_, err := LoadCCRConfig(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ccrusage: invalid CCR config "+path+": line 3, column 1")
}

func TestProviderForModel(t *testing.T) {
	cfg := mustParseConfig(t, testConfigJSON)
	tests := []struct {
		model    string
		want     string
		wantOK   bool
		lookupOn *CCRConfig
	}{
		{"deepseek-reasoner", "deepseek", true, cfg},
		{"gemini-2.5-flash", "gemini", true, cfg}, // also under openrouter: first listed wins
		{"anthropic/claude-sonnet-4", "openrouter", true, cfg},
		{"Deepseek-Chat", "", false, cfg},
		{"", "", false, cfg},
		{"deepseek-chat", "", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			got, ok := tt.lookupOn.ProviderForModel(tt.model)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantOK, ok)
		})
	}
}

func TestCCRConfigRoute(t *testing.T) {
	cfg := mustParseConfig(t, testConfigJSON)
	bare := mustParseConfig(t, `{"Providers":[{"name":"p","models":["m"]}],"Router":{"default":"m","think":"nowhere"}}`)
	tests := []struct {
		name         string
		cfg          *CCRConfig
		task         string
		wantProvider string
		wantModel    string
		wantOK       bool
	}{
		{"set", cfg, TaskThink, "deepseek", "deepseek-reasoner", true},
		{"web search", cfg, TaskWebSearch, "openrouter", "google/gemini-2.5-flash", true},
		{"unset uses default", cfg, TaskImage, "deepseek", "deepseek-chat", true},
		{"unknown task uses default", cfg, "custom", "deepseek", "deepseek-chat", true},
		{"bare model", bare, TaskDefault, "p", "m", true},
		{"bare model unlisted", bare, TaskThink, "", "nowhere", false},
		{"nil config", nil, TaskDefault, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			provider, model, ok := tt.cfg.Route(tt.task)
			assert.Equal(t, tt.wantProvider, provider)
			assert.Equal(t, tt.wantModel, model)
			assert.Equal(t, tt.wantOK, ok)
		})
	}
}

func TestServingProvider(t *testing.T) {
	cfg := mustParseConfig(t, testConfigJSON)
	tests := []struct {
		name   string
		model  string
		routed string
		task   string
		want   string
	}{
		{"routed lists model", "deepseek-chat", "deepseek", TaskDefault, "deepseek"},
		{"routed lists shared model", "gemini-2.5-flash", "openrouter", TaskWebSearch, "openrouter"},
		{"fallback entry", "anthropic/claude-sonnet-4", "deepseek", TaskDefault, "openrouter"},
		{"second fallback entry", "claude-sonnet-4-20250514", "deepseek", TaskDefault, "anthropic"},
		{"first listed without fallback", "gemini-2.5-flash", "deepseek", TaskThink, "gemini"},
		{"unlisted model", "gpt-4o", "deepseek", TaskDefault, "deepseek"},
		{"empty model", "", "deepseek", TaskDefault, "deepseek"},
		{"unknown routed", "gemini-2.5-flash", ProviderUnknown, TaskDefault, ProviderUnknown},
		{"routed not in config", "gemini-2.5-flash", "custom", TaskDefault, "custom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, cfg.servingProvider(tt.model, tt.routed, tt.task))
		})
	}
}

func TestServingProviderNilConfig(t *testing.T) {
	var cfg *CCRConfig
	assert.Equal(t, "deepseek", cfg.servingProvider("gemini-2.5-flash", "deepseek", TaskDefault))
}
