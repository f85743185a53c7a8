package ccrusage

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
)

// maxEventBytes bounds the data of one server-sent event that sseScanner
// keeps, and so its memory. The message_start and message_delta events it
// reads are a few hundred bytes. Longer lines, such as large text deltas,
// are skipped unread.
const maxEventBytes = 64 << 10

// dataField is the only server-sent event field that sseScanner reads. The
// event type comes from the "type" member of the data, which Messages API
// events always carry.
const dataField = "data:"

// lineKind is the handling of the current line by sseScanner.
type lineKind uint8

const (
	lineData    lineKind = iota // a data field, or not yet known: kept
	lineIgnored                 // another field or a comment: dropped
	lineTooLong                 // a data field past maxEventBytes: dropped, and its event with it
)

// sseScanner reads the usage and model of a Messages API event stream
// (text/event-stream) as it passes, without keeping the stream: only the
// current line and event data, each bounded by maxEventBytes. Lines may
// end in "\n", "\r\n" or "\r", and any byte may fall at a Read boundary.
type sseScanner struct {
	line      []byte
	lineBytes int // bytes of the current line seen, kept or not
	kind      lineKind
	// afterCR reports whether the last line ended with '\r', so that a
	// '\n' that starts the next chunk completes that line ending.
	afterCR bool

	data      []byte // data of the current event, lines joined by '\n'
	hasData   bool
	skipEvent bool

	start reportedUsage // from the last message_start
	delta reportedUsage // from the last message_delta
	model string
}

func (s *sseScanner) scan(p []byte) {
	for len(p) > 0 {
		if s.afterCR {
			s.afterCR = false
			if p[0] == '\n' {
				p = p[1:]
				continue
			}
		}
		i := bytes.IndexAny(p, "\r\n")
		if i < 0 {
			s.appendLine(p)
			return
		}
		s.appendLine(p[:i])
		s.afterCR = p[i] == '\r'
		s.endLine()
		p = p[i+1:]
	}
}

// appendLine adds part of the current line, dropping it as soon as it
// cannot be a data field or grows past the bound.
func (s *sseScanner) appendLine(part []byte) {
	s.lineBytes += len(part)
	if s.kind != lineData {
		return
	}
	if len(s.line)+len(part) > maxEventBytes {
		s.kind, s.line = lineTooLong, s.line[:0]
		return
	}
	s.line = append(s.line, part...)
	n := min(len(s.line), len(dataField))
	if string(s.line[:n]) != dataField[:n] {
		s.kind, s.line = lineIgnored, s.line[:0]
	}
}

func (s *sseScanner) endLine() {
	switch {
	case s.lineBytes == 0:
		s.dispatch()
	case s.kind == lineTooLong:
		s.skipEvent = true
	case s.kind == lineData:
		s.appendData(s.line)
	}
	s.line, s.lineBytes, s.kind = s.line[:0], 0, lineData
}

// appendData adds the value of a data line to the event's data. Per the
// server-sent events format, one space after the colon is not part of the
// value, and a line "data" without a colon has an empty value.
func (s *sseScanner) appendData(line []byte) {
	if len(line) < len(dataField) {
		// "data" itself: the prefix check in appendLine let nothing else
		// shorter than "data:" through to the end of a line.
		if string(line) != "data" {
			return
		}
		line = line[len(line):]
	} else {
		line = line[len(dataField):]
		line = bytes.TrimPrefix(line, []byte(" "))
	}
	if s.skipEvent {
		return
	}
	if len(s.data)+1+len(line) > maxEventBytes {
		s.skipEvent, s.data = true, s.data[:0]
		return
	}
	if s.hasData {
		s.data = append(s.data, '\n')
	}
	s.data = append(s.data, line...)
	s.hasData = true
}

// dispatch handles the event that a blank line ends.
func (s *sseScanner) dispatch() {
	if s.hasData && !s.skipEvent {
		s.handleEvent(s.data)
	}
	s.data, s.hasData, s.skipEvent = s.data[:0], false, false
}

// handleEvent reads message_start and message_delta events. Other events
// are recognized by a substring check first, so that text deltas are not
// decoded.
func (s *sseScanner) handleEvent(data []byte) {
	if !bytes.Contains(data, []byte("message_start")) && !bytes.Contains(data, []byte("message_delta")) {
		return
	}
	if !json.Valid(data) {
		return
	}

	// Keys match as encoding/json matches struct fields, ignoring case,
	// and the last of duplicate keys wins.
	var values [3][]byte
	readMembers(data, eventMembers[:], values[:])
	rawType, message, usage := values[0], values[1], values[2]

	typ, _ := jsonString(rawType)
	switch typ {
	case "message_start":
		rawModel, rawUsage := messageFields(message)
		s.model, _ = jsonString(rawModel)
		s.start = parseUsage(rawUsage)
	case "message_delta":
		s.delta = parseUsage(usage)
	}
}

// result merges the usage of message_start with that of the last
// message_delta. An event whose blank line never came, because the stream
// ended or was closed, still counts if its data is complete.
func (s *sseScanner) result() responseInfo {
	s.dispatch()
	return responseInfo{model: s.model, usage: mergeStreamUsage(s.start, s.delta)}
}

// eventMembers are the keys of a stream event that handleEvent reads.
var eventMembers = [3]string{"type", "message", "usage"}

// isEventStream reports whether h declares a text/event-stream body.
func isEventStream(h http.Header) bool {
	// Common exact values skip mime.ParseMediaType, which allocates.
	contentType := h.Get("Content-Type")
	switch contentType {
	case "text/event-stream":
		return true
	case "application/json", "application/json; charset=utf-8":
		return false
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && mediaType == "text/event-stream"
}
