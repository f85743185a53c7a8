// Package ccrtest contains integration tests that drive the real
// claude-code-router (CCR) with the Anthropic Go SDK. The harness
// subpackage runs CCR on 127.0.0.1 in front of fake providers. The module
// is separate from ccrusage so that the SDK and the harness never become
// dependencies of the library.
package ccrtest
