package harness

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// configHarness returns a Harness with fakes and settings but no CCR, for
// tests of the config it writes.
func configHarness(t *testing.T, fallback map[string][]string) *Harness {
	t.Helper()
	h := &Harness{
		DeepSeek:             NewUpstream("deepseek", OpenAI),
		Gemini:               NewUpstream("gemini", OpenAI),
		OpenRouter:           NewUpstream("openrouter", OpenAI),
		Anthropic:            NewUpstream("anthropic", Anthropic),
		Broken:               NewFailingUpstream("broken", 500),
		RateLimited:          NewFailingUpstream("ratelimited", 429),
		DeadPort:             9,
		apiKey:               DefaultAPIKey,
		longContextThreshold: DefaultLongContextThreshold,
		fallback:             fallback,
	}
	t.Cleanup(func() {
		for _, u := range []*Upstream{h.DeepSeek, h.Gemini, h.OpenRouter, h.Anthropic, h.Broken, h.RateLimited} {
			u.Close()
		}
	})
	return h
}

// readConfig writes cfg, reads it back and decodes it into a generic map,
// so the test checks the keys as CCR reads them.
func readConfig(t *testing.T, cfg config) map[string]any {
	t.Helper()
	path := filepath.Join(t.TempDir(), ".claude-code-router", "config.json")
	require.NoError(t, writeConfig(path, cfg))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var decoded map[string]any
	require.NoError(t, json.Unmarshal(data, &decoded))
	return decoded
}

func TestConfigKeys(t *testing.T) {
	h := configHarness(t, nil)
	got := readConfig(t, h.newConfig(4567))

	assert.Equal(t, "127.0.0.1", got["HOST"])
	assert.Equal(t, float64(4567), got["PORT"])
	assert.Equal(t, DefaultAPIKey, got["APIKEY"])
	assert.Equal(t, "warn", got["LOG_LEVEL"])
	assert.NotContains(t, got, "fallback", "no fallback key without Options.Fallback")
	assert.Equal(t, map[string]any{
		"default":              RouteDefault,
		"background":           RouteBackground,
		"think":                RouteThink,
		"longContext":          RouteLongContext,
		"longContextThreshold": float64(DefaultLongContextThreshold),
		"webSearch":            RouteWebSearch,
	}, got["Router"])
}

func TestConfigProviders(t *testing.T) {
	h := configHarness(t, nil)
	got := readConfig(t, h.newConfig(4567))

	providers, ok := got["Providers"].([]any)
	require.True(t, ok, "Providers is a list")
	byName := map[string]map[string]any{}
	for _, p := range providers {
		m := p.(map[string]any)
		byName[m["name"].(string)] = m
	}

	// Every model the routes and Model constants name must be listed by
	// its provider.
	for _, route := range []string{RouteDefault, RouteBackground, RouteThink, RouteLongContext, RouteWebSearch,
		ModelOpenRouter, ModelAnthropic, ModelBroken, ModelRateLimited, ModelDead} {
		name, model := SplitModel(route)
		require.Contains(t, byName, name, route)
		assert.Contains(t, byName[name]["models"], model, route)
	}
	assert.Equal(t, h.Anthropic.URL(), byName["anthropic"]["api_base_url"])
	assert.Equal(t, map[string]any{"use": []any{"Anthropic"}}, byName["anthropic"]["transformer"])
	assert.NotContains(t, byName["deepseek"], "transformer")
	assert.Equal(t, "http://127.0.0.1:9/v1/chat/completions", byName["dead"]["api_base_url"])
}

func TestConfigFallback(t *testing.T) {
	fallback := map[string][]string{"default": {ModelBroken, ModelOpenRouter}}
	h := configHarness(t, fallback)
	got := readConfig(t, h.newConfig(4567))

	assert.Equal(t, map[string]any{"default": []any{ModelBroken, ModelOpenRouter}}, got["fallback"])
}

func TestSplitModel(t *testing.T) {
	tests := []struct {
		in, provider, model string
	}{
		{"deepseek,deepseek-chat", "deepseek", "deepseek-chat"},
		{"openrouter,anthropic/claude-sonnet-4", "openrouter", "anthropic/claude-sonnet-4"},
		{"a,b,c", "a", "b,c"},
		{"claude-sonnet-4", "", "claude-sonnet-4"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			provider, model := SplitModel(tt.in)
			assert.Equal(t, tt.provider, provider)
			assert.Equal(t, tt.model, model)
		})
	}
}

func TestProcessEnv(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	t.Setenv("http_proxy", "http://127.0.0.1:1")
	t.Setenv("SERVICE_PORT", "1")
	t.Setenv("CCRTEST_KEPT", "yes")

	env := processEnv("/h", "/t")

	assert.Contains(t, env, "HOME=/h")
	assert.Contains(t, env, "TMPDIR=/t")
	assert.Contains(t, env, "NO_PROXY=127.0.0.1,localhost")
	assert.Contains(t, env, "CCRTEST_KEPT=yes")
	for _, kv := range env {
		assert.NotRegexp(t, `(?i)^(https?_proxy|service_port)=`, kv)
	}
}
