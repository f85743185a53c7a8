package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDemoOnStandin(t *testing.T) {
	var stdout, stderr bytes.Buffer

	require.NoError(t, run([]string{"-rounds", "4"}, &stdout, &stderr))

	var metrics struct {
		Providers []struct {
			Name     string         `json:"name"`
			Requests int64          `json:"requests"`
			Failures int64          `json:"failures"`
			Tokens   int64          `json:"tokens"`
			Level    string         `json:"level"`
			Tasks    map[string]any `json:"tasks"`
		} `json:"providers"`
		Totals struct {
			Requests int64 `json:"requests"`
			Failures int64 `json:"failures"`
		} `json:"totals"`
		CCR struct {
			State string `json:"state"`
		} `json:"ccr"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &metrics))
	assert.Equal(t, int64(48), metrics.Totals.Requests+metrics.Totals.Failures, "4 rounds of 6 routes, streaming and not")
	assert.Equal(t, int64(4), metrics.Totals.Failures, "every eleventh request is rate limited")
	assert.Equal(t, "available", metrics.CCR.State)
	tasks := map[string]bool{}
	for _, p := range metrics.Providers {
		for task := range p.Tasks {
			tasks[task] = true
		}
	}
	for _, task := range []string{"default", "background", "think", "longContext", "webSearch"} {
		assert.True(t, tasks[task], "task %s recorded", task)
	}

	log := stderr.String()
	assert.Contains(t, log, "alert_level=WARNING")
	assert.Contains(t, log, "alert_level=CRITICAL")
	assert.Equal(t, 4, strings.Count(log, `msg="request failed"`))
}

func TestDemoRejectsBadFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	assert.ErrorContains(t, run([]string{"-rounds", "0"}, &stdout, &stderr), "invalid -rounds 0")
	assert.Error(t, run([]string{"-no-such-flag"}, &stdout, &stderr))
	assert.ErrorContains(t, run([]string{"-config", "/nonexistent/config.json"}, &stdout, &stderr), "/nonexistent/config.json")
	stderr.Reset()
	assert.NoError(t, run([]string{"-h"}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "env CCR_URL")
}
