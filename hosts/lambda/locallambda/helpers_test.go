package locallambda

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bootstrapPath is the test bootstrap (testdata/bootstrap), built once.
var bootstrapPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "locallambda-bootstrap-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bootstrapPath = filepath.Join(dir, "bootstrap")
	// Built as for provided.al2023 (spec 1.10), stripped: every create
	// sends it base64-encoded, and the race detector makes that the
	// tests' main cost.
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-ldflags", "-s -w", "-o", bootstrapPath, "./testdata/bootstrap")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build the test bootstrap: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

type zipEntry struct {
	data []byte
	mode os.FileMode
}

func makeZip(t testing.TB, files map[string]zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) { return flate.NewWriter(w, flate.BestSpeed) })
	for name, f := range files {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(f.mode)
		w, err := zw.CreateHeader(h)
		require.NoError(t, err)
		_, err = w.Write(f.data)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

var (
	zipMu    sync.Mutex
	zipCache = map[string][]byte{}
)

// codeZip is a deployment package: the test bootstrap and a version.txt.
func codeZip(t testing.TB, version string) []byte {
	t.Helper()
	return cachedZip(t, version, func(bin []byte) map[string]zipEntry {
		return map[string]zipEntry{
			"bootstrap":   {bin, 0o755},
			"version.txt": {[]byte(version + "\n"), 0o644},
		}
	})
}

// cachedZip builds the package files(bootstrap binary) once per key.
func cachedZip(t testing.TB, key string, files func(bin []byte) map[string]zipEntry) []byte {
	t.Helper()
	zipMu.Lock()
	defer zipMu.Unlock()
	if b, ok := zipCache[key]; ok {
		return b
	}
	bin, err := os.ReadFile(bootstrapPath)
	require.NoError(t, err)
	b := makeZip(t, files(bin))
	zipCache[key] = b
	return b
}

// smallZip is a readable package with nothing runnable, for requests
// that must fail before code matters.
func smallZip(t testing.TB) []byte {
	return makeZip(t, map[string]zipEntry{"README": {[]byte("not code"), 0o644}})
}

func newClient(url string, opts ...func(*lambda.Options)) *lambda.Client {
	return lambda.New(lambda.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	}, opts...)
}

// noRetries makes the SDK give up after one attempt (it retries 429).
func noRetries(o *lambda.Options) { o.RetryMaxAttempts = 1 }

const testRole = "arn:aws:iam::123456789012:role/test-role"

type fnOpts struct {
	memory, timeout int32
	env             map[string]string
	zip             []byte
}

func createInput(name string, o fnOpts) *lambda.CreateFunctionInput {
	in := &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Role:         aws.String(testRole),
		Runtime:      types.RuntimeProvidedal2023,
		Handler:      aws.String("bootstrap"),
		Code:         &types.FunctionCode{ZipFile: o.zip},
	}
	if o.memory != 0 {
		in.MemorySize = aws.Int32(o.memory)
	}
	if o.timeout != 0 {
		in.Timeout = aws.Int32(o.timeout)
	}
	if o.env != nil {
		in.Environment = &types.Environment{Variables: o.env}
	}
	return in
}

// createActive creates a function and waits with the SDK's waiter until it
// is Active.
func createActive(t *testing.T, c *lambda.Client, name string, o fnOpts) *lambda.CreateFunctionOutput {
	t.Helper()
	ctx := context.Background()
	if o.zip == nil {
		o.zip = codeZip(t, "v1")
	}
	out, err := c.CreateFunction(ctx, createInput(name, o))
	require.NoError(t, err)
	w := lambda.NewFunctionActiveV2Waiter(c, func(o *lambda.FunctionActiveV2WaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 100*time.Millisecond
	})
	require.NoError(t, w.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)}, 30*time.Second))
	return out
}

func waitUpdated(t *testing.T, c *lambda.Client, name string) {
	t.Helper()
	w := lambda.NewFunctionUpdatedV2Waiter(c, func(o *lambda.FunctionUpdatedV2WaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 100*time.Millisecond
	})
	require.NoError(t, w.Wait(context.Background(), &lambda.GetFunctionInput{FunctionName: aws.String(name)}, 30*time.Second))
}

// invoke calls Invoke with Tail and returns the output and the decoded log.
func invoke(t *testing.T, c *lambda.Client, name string, payload string) (*lambda.InvokeOutput, string) {
	t.Helper()
	out, err := c.Invoke(context.Background(), &lambda.InvokeInput{
		FunctionName: aws.String(name),
		Payload:      []byte(payload),
		LogType:      types.LogTypeTail,
	})
	require.NoError(t, err)
	return out, decodeTail(t, out)
}

func decodeTail(t *testing.T, out *lambda.InvokeOutput) string {
	t.Helper()
	require.NotNil(t, out.LogResult, "X-Amz-Log-Result")
	b, err := base64.StdEncoding.DecodeString(*out.LogResult)
	require.NoError(t, err)
	return string(b)
}

type report struct {
	requestID                   string
	duration, initDuration      float64
	billed, memorySize, maxUsed int
	cold                        bool
}

// The REPORT line of golang-logging.md (spec 2.5), strictly.
var reportRE = regexp.MustCompile(`(?m)^REPORT RequestId: ([0-9a-f-]{36})\tDuration: (\d+\.\d\d) ms\tBilled Duration: (\d+) ms\tMemory Size: (\d+) MB\tMax Memory Used: (\d+) MB\t(?:Init Duration: (\d+\.\d\d) ms\t)?$`)

// parseReport finds the REPORT line in a log and checks its arithmetic.
func parseReport(t *testing.T, log string) report {
	t.Helper()
	m := reportRE.FindStringSubmatch(log)
	require.NotNil(t, m, "no REPORT line in:\n%s", log)
	var r report
	r.requestID = m[1]
	r.duration, _ = strconv.ParseFloat(m[2], 64)
	r.billed, _ = strconv.Atoi(m[3])
	r.memorySize, _ = strconv.Atoi(m[4])
	r.maxUsed, _ = strconv.Atoi(m[5])
	if m[6] != "" {
		r.cold = true
		r.initDuration, _ = strconv.ParseFloat(m[6], 64)
	}
	// Billed is the duration (plus init on a cold start, as for provided.*)
	// rounded up to the millisecond; the printed values are rounded to
	// 0.01 ms, hence the tolerance of one.
	want := math.Ceil(r.duration + r.initDuration)
	assert.InDelta(t, want, float64(r.billed), 1, "Billed Duration in %q", m[0])
	return r
}

// lines returns the log's lines in order.
func lines(log string) []string {
	return strings.Split(strings.TrimSuffix(log, "\n"), "\n")
}

type fnErrorBody struct {
	ErrorType    string `json:"errorType"`
	ErrorMessage string `json:"errorMessage"`
}

func decodeError(t *testing.T, out *lambda.InvokeOutput) fnErrorBody {
	t.Helper()
	require.NotNil(t, out.FunctionError, "X-Amz-Function-Error; payload %s", out.Payload)
	assert.Equal(t, "Unhandled", *out.FunctionError)
	var e fnErrorBody
	require.NoError(t, json.Unmarshal(out.Payload, &e), "%s", out.Payload)
	return e
}

func pidOf(t *testing.T, c *lambda.Client, name string) (int, report) {
	t.Helper()
	out, log := invoke(t, c, name, `{"op":"pid"}`)
	require.Nil(t, out.FunctionError, "%s", out.Payload)
	pid, err := strconv.Atoi(string(out.Payload))
	require.NoError(t, err, "%s", out.Payload)
	return pid, parseReport(t, log)
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}
