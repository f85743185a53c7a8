package harness

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Routes of the config the harness writes, as CCR's "provider,model".
const (
	// RouteDefault serves requests that match no other route.
	RouteDefault = "deepseek,deepseek-chat"
	// RouteBackground serves requests whose model names a Claude Haiku.
	RouteBackground = "gemini,gemini-2.5-flash"
	// RouteThink serves requests that carry a thinking field.
	RouteThink = "deepseek,deepseek-reasoner"
	// RouteLongContext serves requests longer than LongContextThreshold
	// tokens, as CCR counts them with tiktoken's cl100k_base.
	RouteLongContext = "gemini,gemini-2.5-pro"
	// RouteWebSearch serves requests with a tool whose type starts with
	// web_search.
	RouteWebSearch = "openrouter,google/gemini-2.5-flash"
)

// Models that no route uses, for requests that name "provider,model"
// themselves and so bypass CCR's Router.
const (
	// ModelOpenRouter is a second OpenRouter model, a fallback target.
	ModelOpenRouter = "openrouter,anthropic/claude-sonnet-4"
	// ModelAnthropic is served by the Anthropic-format fake, which CCR
	// passes through unchanged, cache fields included.
	ModelAnthropic = "anthropic,claude-sonnet-4-20250514"
	// ModelBroken is served by a fake that responds to every request with
	// 500.
	ModelBroken = "broken,broken-model"
	// ModelRateLimited is served by a fake that responds to every request
	// with 429.
	ModelRateLimited = "ratelimited,ratelimited-model"
	// ModelDead points at a closed port, so CCR's connection is refused.
	ModelDead = "dead,dead-model"
)

// SplitModel splits CCR's "provider,model" at the first comma. Without a
// comma, provider is empty and model is s.
func SplitModel(s string) (provider, model string) {
	provider, model, ok := strings.Cut(s, ",")
	if !ok {
		return "", s
	}
	return provider, model
}

// DefaultLongContextThreshold is the Router's longContextThreshold unless
// Options sets another, in tokens. CCR's own default is 60000; a low value
// keeps long-context test requests small.
const DefaultLongContextThreshold = 2000

// DefaultAPIKey is the key clients must send to CCR unless Options sets
// another.
const DefaultAPIKey = "ccr-test-key"

// config is the part of CCR 2.0.0's config.json that the harness writes.
type config struct {
	Host      string              `json:"HOST"`
	Port      int                 `json:"PORT"`
	APIKey    string              `json:"APIKEY"`
	Log       bool                `json:"LOG"`
	LogLevel  string              `json:"LOG_LEVEL"`
	Providers []provider          `json:"Providers"`
	Router    router              `json:"Router"`
	Fallback  map[string][]string `json:"fallback,omitempty"`
}

type provider struct {
	Name        string       `json:"name"`
	APIBaseURL  string       `json:"api_base_url"`
	APIKey      string       `json:"api_key"`
	Models      []string     `json:"models"`
	Transformer *transformer `json:"transformer,omitempty"`
}

type transformer struct {
	Use []string `json:"use"`
}

type router struct {
	Default              string `json:"default"`
	Background           string `json:"background"`
	Think                string `json:"think"`
	LongContext          string `json:"longContext"`
	LongContextThreshold int    `json:"longContextThreshold"`
	WebSearch            string `json:"webSearch"`
}

// newConfig returns the config for CCR on 127.0.0.1:port in front of the
// harness's fakes. Each provider gets a fake api_key, which CCR sends on to
// the fake and nowhere else.
func (h *Harness) newConfig(port int) config {
	deadURL := "http://127.0.0.1:" + strconv.Itoa(h.DeadPort) + OpenAI.path()
	return config{
		Host:   "127.0.0.1",
		Port:   port,
		APIKey: h.apiKey,
		// At "warn" CCR logs failures only. At "info" and below it logs
		// request bodies, and at "debug" the providers' keys as well.
		Log:      true,
		LogLevel: "warn",
		Providers: []provider{
			{Name: "deepseek", APIBaseURL: h.DeepSeek.URL(), APIKey: "fake-key-deepseek",
				Models: []string{"deepseek-chat", "deepseek-reasoner"}},
			{Name: "gemini", APIBaseURL: h.Gemini.URL(), APIKey: "fake-key-gemini",
				Models: []string{"gemini-2.5-flash", "gemini-2.5-pro"}},
			{Name: "openrouter", APIBaseURL: h.OpenRouter.URL(), APIKey: "fake-key-openrouter",
				Models: []string{"google/gemini-2.5-flash", "anthropic/claude-sonnet-4"}},
			{Name: "anthropic", APIBaseURL: h.Anthropic.URL(), APIKey: "fake-key-anthropic",
				Models:      []string{"claude-sonnet-4-20250514"},
				Transformer: &transformer{Use: []string{"Anthropic"}}},
			{Name: "broken", APIBaseURL: h.Broken.URL(), APIKey: "fake-key-broken",
				Models: []string{"broken-model"}},
			{Name: "ratelimited", APIBaseURL: h.RateLimited.URL(), APIKey: "fake-key-ratelimited",
				Models: []string{"ratelimited-model"}},
			{Name: "dead", APIBaseURL: deadURL, APIKey: "fake-key-dead",
				Models: []string{"dead-model"}},
		},
		Router: router{
			Default:              RouteDefault,
			Background:           RouteBackground,
			Think:                RouteThink,
			LongContext:          RouteLongContext,
			LongContextThreshold: h.longContextThreshold,
			WebSearch:            RouteWebSearch,
		},
		Fallback: h.fallback,
	}
}

// writeConfig writes cfg to path, creating its directory.
func writeConfig(path string, cfg config) error {
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("harness: encoding config.json failed: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("harness: creating config directory failed: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("harness: writing config.json failed: %w", err)
	}
	return nil
}
