package blueprint_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/compiler/blueprint"
)

// positionDoc has an unknown key on line 7, a wrong type on line 6 and a
// syntax error on line 2, one at a time.
const positionDoc = `[blueprint]
name = "bp"

[blueprint.jobs.x]
source = "jobs/x"
memory = 3008
timeout = 30
`

func TestParse_PositionOfUnknownKey(t *testing.T) {
	doc := strings.Replace(positionDoc, "timeout = 30", "memroy = 3008", 1)
	_, err := blueprint.Parse("blueprint.toml", []byte(doc))
	require.Error(t, err)
	assert.Equal(t, `blueprint.toml:7:1: unknown key "blueprint.jobs.x.memroy" (did you mean "memory"?)`, err.Error())
	assert.ErrorIs(t, err, blueprint.ErrUnknownKey)

	var pe *blueprint.PosError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, blueprint.PosError{
		File: "blueprint.toml", Line: 7, Column: 1, Key: "blueprint.jobs.x.memroy",
		Msg: `unknown key "blueprint.jobs.x.memroy" (did you mean "memory"?)`,
		Err: blueprint.ErrUnknownKey, Cause: pe.Cause,
	}, *pe)
}

func TestParse_PositionOfWrongType(t *testing.T) {
	doc := strings.Replace(positionDoc, "memory = 3008", `memory = "big"`, 1)
	_, err := blueprint.Parse("blueprint.toml", []byte(doc))
	require.Error(t, err)
	assert.Equal(t, `blueprint.toml:6:10: wrong type for "blueprint.jobs.x.memory": got string, want integer`, err.Error())
	assert.ErrorIs(t, err, blueprint.ErrWrongType)

	var pe *blueprint.PosError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 6, pe.Line)
	assert.Equal(t, 10, pe.Column)
	assert.Equal(t, "blueprint.jobs.x.memory", pe.Key)
}

func TestParse_PositionOfSyntaxError(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{
			name: "unterminated string",
			doc:  strings.Replace(positionDoc, `name = "bp"`, `name = "bp`, 1),
			want: `blueprint.toml:2:11: TOML syntax error: basic strings cannot have new lines`,
		},
		{
			name: "missing value",
			doc:  strings.Replace(positionDoc, "timeout = 30", "timeout =", 1),
			want: `blueprint.toml:7:10: TOML syntax error: unexpected character U+000A at start of value`,
		},
		{
			name: "unclosed table header",
			doc:  strings.Replace(positionDoc, "[blueprint.jobs.x]", "[blueprint.jobs.x", 1),
			want: `blueprint.toml:4:18: TOML syntax error: expected ']' to close table name`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := blueprint.Parse("blueprint.toml", []byte(tc.doc))
			require.Error(t, err)
			assert.Equal(t, tc.want, err.Error())
			assert.ErrorIs(t, err, blueprint.ErrSyntax)
			var pe *blueprint.PosError
			require.ErrorAs(t, err, &pe)
			assert.Empty(t, pe.Key)
		})
	}
}

func TestLoad_Canonical(t *testing.T) {
	b, err := blueprint.Load(canonicalPath)
	require.NoError(t, err)
	abs, err := filepath.Abs("testdata")
	require.NoError(t, err)
	assert.Equal(t, abs, b.Dir)
	assert.Equal(t, []string{"heavy_computation"}, b.JobNames())
	assert.Equal(t, blueprint.LanguageGo, b.Jobs["heavy_computation"].Language)
}

// writeBlueprint makes a blueprint folder with blueprint.toml holding doc
// and the given files (name → content; a name ending in / is a folder).
func writeBlueprint(t *testing.T, doc string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			require.NoError(t, os.MkdirAll(p, 0o755))
			continue
		}
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	path := filepath.Join(dir, blueprint.FileName)
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o644))
	return path
}

func TestLoad_Files(t *testing.T) {
	const head = "[blueprint]\nname = \"bp\"\n"
	tests := []struct {
		name      string
		doc       string
		files     map[string]string
		wantLangs map[string]blueprint.Language // on success
		wantErr   []string                      // lines, after "<path>: "
		sentinel  error
	}{
		{
			name: "languages inferred, explicit kept",
			doc: head +
				"[blueprint.jobs.g]\nsource = \"g\"\n" +
				"[blueprint.jobs.r]\nsource = \"r\"\n" +
				"[blueprint.jobs.w]\nsource = \"m.wasm\"\n" +
				"[blueprint.jobs.e]\nsource = \"g\"\nlanguage = \"wat\"\n",
			files:     map[string]string{"g/go.mod": "module g\n", "r/Cargo.toml": "", "m.wasm": ""},
			wantLangs: map[string]blueprint.Language{"g": "go", "r": "rust", "w": "wasm", "e": "wat"},
		},
		{
			name:      "samples found",
			doc:       head + "[blueprint.jobs.j]\nsource = \"j.wat\"\nsamples = [\"s/a.bin\", \"./s/b.bin\"]\n",
			files:     map[string]string{"j.wat": "(module)", "s/a.bin": "a", "s/b.bin": ""},
			wantLangs: map[string]blueprint.Language{"j": "wat"},
		},
		{
			name:     "sample missing",
			doc:      head + "[blueprint.jobs.j]\nsource = \"j.wat\"\nsamples = [\"s/a.bin\", \"s/missing.bin\"]\n",
			files:    map[string]string{"j.wat": "", "s/a.bin": ""},
			wantErr:  []string{`blueprint.jobs.j.samples[1] = "s/missing.bin": sample file not found in the blueprint folder`},
			sentinel: blueprint.ErrSampleNotFound,
		},
		{
			name:     "sample is a folder",
			doc:      head + "[blueprint.jobs.j]\nsource = \"j.wat\"\nsamples = [\"s\"]\n",
			files:    map[string]string{"j.wat": "", "s/": ""},
			wantErr:  []string{`blueprint.jobs.j.samples[0] = "s": sample is not a regular file`},
			sentinel: blueprint.ErrSampleNotFound,
		},
		{
			name:     "source missing",
			doc:      head + "[blueprint.jobs.j]\nsource = \"jobs/j\"\nlanguage = \"go\"\n",
			wantErr:  []string{`blueprint.jobs.j.source = "jobs/j": not found in the blueprint folder`},
			sentinel: blueprint.ErrSourceNotFound,
		},
		{
			name:     "language not inferable",
			doc:      head + "[blueprint.jobs.j]\nsource = \"main.py\"\n",
			files:    map[string]string{"main.py": ""},
			wantErr:  []string{`blueprint.jobs.j.source = "main.py": unknown file type; looked for a .wasm, .wat, .c or .go file, or a folder holding *.c files, Cargo.toml, go.mod or *.go files; set language`},
			sentinel: blueprint.ErrUnknownLanguage,
		},
		{
			name: "every problem, in job order",
			doc: head +
				"[blueprint.jobs.b]\nsource = \"b\"\nsamples = [\"nope\"]\n" +
				"[blueprint.jobs.a]\nsource = \"empty\"\n",
			files: map[string]string{"b/x.c": "", "empty/": ""},
			wantErr: []string{
				`blueprint.jobs.a.source = "empty": nothing recognised in the folder; looked for`,
				`blueprint.jobs.b.samples[0] = "nope": sample file not found in the blueprint folder`,
			},
			sentinel: blueprint.ErrSampleNotFound,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeBlueprint(t, tc.doc, tc.files)
			b, err := blueprint.Load(path)
			if tc.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, filepath.Dir(path), b.Dir)
				got := map[string]blueprint.Language{}
				for _, j := range b.SortedJobs() {
					got[j.Name] = j.Language
				}
				assert.Equal(t, tc.wantLangs, got)
				return
			}
			require.Error(t, err)
			assert.Nil(t, b)
			lines := strings.Split(err.Error(), "\n")
			require.Len(t, lines, len(tc.wantErr), err.Error())
			for i, want := range tc.wantErr {
				assert.True(t, strings.HasPrefix(lines[i], path+": "+want), "line %d:\n%s\nwant prefix:\n%s", i, lines[i], want)
			}
			assert.ErrorIs(t, err, tc.sentinel)
		})
	}
}

func TestLoad_SymlinkCannotEscape(t *testing.T) {
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret.bin"), []byte("x"), 0o644))
	path := writeBlueprint(t, "[blueprint]\nname = \"bp\"\n[blueprint.jobs.j]\nsource = \"j.wat\"\nsamples = [\"link.bin\"]\n",
		map[string]string{"j.wat": ""})
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret.bin"), filepath.Join(filepath.Dir(path), "link.bin")))

	_, err := blueprint.Load(path)
	require.Error(t, err)
	assert.ErrorIs(t, err, blueprint.ErrSampleNotFound)
	assert.Contains(t, err.Error(), `blueprint.jobs.j.samples[0] = "link.bin": sample file `)
}

func TestLoad_ParseErrorsNameThePath(t *testing.T) {
	path := writeBlueprint(t, "[blueprint]\nname = \"bp\"\nnmae = 1\n", nil)
	_, err := blueprint.Load(path)
	require.Error(t, err)
	assert.Equal(t, path+`:3:1: unknown key "blueprint.nmae" (did you mean "name"?)`, err.Error())
}

func TestLoad_TooLarge(t *testing.T) {
	doc := "[blueprint]\nname = \"bp\"\n[blueprint.jobs.j]\nsource = \"j.wat\"\n#" + strings.Repeat("x", blueprint.MaxFileSize)
	path := writeBlueprint(t, doc, map[string]string{"j.wat": ""})
	_, err := blueprint.Load(path)
	require.ErrorIs(t, err, blueprint.ErrTooLarge)
	assert.Contains(t, err.Error(), path)
}

func TestLoad_ExactlyMaxSize(t *testing.T) {
	doc := "[blueprint]\nname = \"bp\"\n[blueprint.jobs.j]\nsource = \"j.wat\"\n#"
	doc += strings.Repeat("x", blueprint.MaxFileSize-len(doc))
	path := writeBlueprint(t, doc, map[string]string{"j.wat": ""})
	_, err := blueprint.Load(path)
	require.NoError(t, err)
}

func TestLoad_Missing(t *testing.T) {
	_, err := blueprint.Load(filepath.Join(t.TempDir(), blueprint.FileName))
	require.ErrorIs(t, err, os.ErrNotExist)
}
