package cfapi_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/hosts/workers/cfapi"
)

// TestBinding_MarshalJSON: each type carries exactly its documented
// fields (https://developers.cloudflare.com/workers/configuration/multipart-upload-metadata/#bindings).
func TestBinding_MarshalJSON(t *testing.T) {
	all := cfapi.Binding{Name: "B", Text: "t", JSON: json.RawMessage(`[1]`), ClassName: "C", ScriptName: "state", NamespaceID: "ns", Service: "svc"}
	cases := []struct {
		typ  string
		edit func(*cfapi.Binding)
		want string
	}{
		{cfapi.BindingPlainText, nil, `{"type":"plain_text","name":"B","text":"t"}`},
		{cfapi.BindingSecretText, nil, `{"type":"secret_text","name":"B","text":"t"}`},
		{cfapi.BindingJSON, nil, `{"type":"json","name":"B","json":[1]}`},
		{cfapi.BindingDurableObjectNamespace, nil, `{"type":"durable_object_namespace","name":"B","class_name":"C","script_name":"state"}`},
		{cfapi.BindingDurableObjectNamespace, func(b *cfapi.Binding) { b.ScriptName = "" }, `{"type":"durable_object_namespace","name":"B","class_name":"C"}`},
		{cfapi.BindingKVNamespace, nil, `{"type":"kv_namespace","name":"B","namespace_id":"ns"}`},
		{cfapi.BindingService, nil, `{"type":"service","name":"B","service":"svc"}`},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			b := all
			b.Type = tc.typ
			if tc.edit != nil {
				tc.edit(&b)
			}
			got, err := json.Marshal(b)
			require.NoError(t, err)
			assert.JSONEq(t, tc.want, string(got))
		})
	}
	_, err := json.Marshal(cfapi.Binding{Type: "r2_bucket", Name: "B"})
	assert.ErrorContains(t, err, `unsupported type "r2_bucket"`)
}
