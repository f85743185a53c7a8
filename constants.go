package ccrusage

// Default alert thresholds, as fractions of a daily limit. A provider is at
// WARNING from DefaultWarningThreshold of either limit and at CRITICAL from
// DefaultCriticalThreshold, both bounds inclusive. Config.Thresholds
// overrides them.
const (
	DefaultWarningThreshold  = 0.80
	DefaultCriticalThreshold = 0.95
)

// Provider names as claude-code-router's config.json spells them. Any other
// name works as well; these exist so that callers and the library agree on
// spelling.
const (
	ProviderAnthropic  = "anthropic"
	ProviderDeepSeek   = "deepseek"
	ProviderGemini     = "gemini"
	ProviderOpenRouter = "openrouter"
)

// Task types: the Router entries of claude-code-router, which picks one
// route per request. A caller may record under any other task name.
const (
	TaskDefault     = "default"
	TaskBackground  = "background"
	TaskThink       = "think"
	TaskLongContext = "longContext"
	TaskWebSearch   = "webSearch"
	TaskImage       = "image"
)

// Bounds on distinct names, so that a caller passing unbounded strings
// cannot grow a Tracker's memory without limit. Config.MaxProviders and
// Config.MaxTasks override them.
const (
	DefaultMaxProviders = 64
	DefaultMaxTasks     = 32
)

// OverflowName is the provider or task name under which a Tracker counts
// names past its bound. It cannot be configured as a provider of its own.
const OverflowName = "_overflow"

// ProviderUnknown is the provider name under which requests are counted
// when the provider cannot be determined, such as for a request body that
// is not the Messages API.
const ProviderUnknown = "unknown"
