package httphost

import (
	"encoding/json"
	"strconv"
)

// appendInvokeResponse encodes r by hand: it is on every invocation's path,
// and encoding/json would spend more time on the byte array than the job
// spends running. Strings other than the error and logs are restricted to
// characters that need no escaping (see invocationIDRE).
func appendInvokeResponse(dst []byte, r *InvokeResponse) []byte {
	dst = append(dst, `{"job_id":`...)
	dst = strconv.AppendUint(dst, uint64(r.JobID), 10)
	dst = append(dst, `,"result":`...)
	dst = appendBytes(dst, r.Result)
	dst = append(dst, `,"success":`...)
	dst = strconv.AppendBool(dst, r.Success)
	dst = append(dst, `,"execution_ms":`...)
	dst = strconv.AppendInt(dst, r.ExecutionMs, 10)
	dst = append(dst, `,"memory_used_mb":`...)
	dst = strconv.AppendInt(dst, r.MemoryUsedMB, 10)
	if r.Error != "" {
		dst = append(dst, `,"error":`...)
		dst = appendString(dst, r.Error)
	}
	if r.Code != "" {
		dst = append(dst, `,"code":"`...)
		dst = append(dst, r.Code...)
		dst = append(dst, '"')
	}
	if r.Details != nil {
		b, _ := json.Marshal(r.Details)
		dst = append(dst, `,"details":`...)
		dst = append(dst, b...)
	}
	dst = append(dst, `,"execution_us":`...)
	dst = strconv.AppendInt(dst, r.ExecutionUs, 10)
	dst = append(dst, `,"memory_used_bytes":`...)
	dst = strconv.AppendUint(dst, r.MemoryUsedBytes, 10)
	dst = append(dst, `,"cold":`...)
	dst = strconv.AppendBool(dst, r.Cold)
	if r.InvocationID != "" {
		dst = append(dst, `,"invocation_id":`...)
		dst = appendString(dst, r.InvocationID)
	}
	if len(r.Logs) > 0 {
		dst = append(dst, `,"logs":[`...)
		for i, l := range r.Logs {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, l)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// appendString appends s as a JSON string; plain strings (the common case)
// are copied, anything needing escapes goes through encoding/json.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s)
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
