package rights_test

import (
	"reflect"
	"testing"

	"github.com/datarights/datarights/rights"
)

// TestJSONTextProblems: every string of a body, key or value, at any depth,
// is checked as written, and named by its path.
func TestJSONTextProblems(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		body string
		want []string // field: reason
	}{
		{"clean", `{"note":"杭州 \ufffd ok","a":[1,"x",{"b":null}]}`, nil},
		{"escaped backslash before u0000 is text", `{"note":"a\\u0000"}`, nil},
		{"escaped NUL in a value", `{"note":"a\u0000b"}`, []string{"note: must not contain a NUL byte"}},
		{"raw NUL in a value", "{\"note\":\"a\x00b\"}", []string{"note: must not contain a NUL byte"}},
		{"invalid UTF-8 in a value", "{\"product\":\"webank\",\"note\":\"a\xffb\"}", []string{"note: must be valid UTF-8"}},
		{"nested", `{"subject":{"identities":{"user_id":"u\u0000"}},"locale":"en"}`,
			[]string{"subject.identities.user_id: must not contain a NUL byte"}},
		{"in an array", `{"purposes":["ads","lo\u0000c"]}`, []string{"purposes[1]: must not contain a NUL byte"}},
		{"object in an array", "{\"x\":[{\"a\":1},{\"b\":\"\xc3\"}]}", []string{"x[1].b: must be valid UTF-8"}},
		{"in a key", `{"subject":{"identities":{"user\u0000id":"u-1"}}}`,
			[]string{`subject.identities."user\x00id": the field name must not contain a NUL byte`}},
		{"invalid UTF-8 in a key", "{\"corrections\":{\"ci\xfe\":\"x\"}}",
			[]string{"corrections.\"ci\ufffd\": the field name must be valid UTF-8"}},
		{"after a bad key the next fields are still named", "{\"a\xff\":1,\"b\":\"\x00\"}",
			[]string{"\"a\ufffd\": the field name must be valid UTF-8", "b: must not contain a NUL byte"}},
		{"top-level string", `"\u0000"`, []string{"body: must not contain a NUL byte"}},
		{"malformed after a bad string", `{"a":"\u0000","b":`, []string{"a: must not contain a NUL byte"}},
		{"invalid UTF-8 outside strings is left to the decoder", "{\"a\":1\xff}", nil},
	}
	for _, tc := range cases {
		var got []string
		for _, p := range rights.JSONTextProblems([]byte(tc.body)) {
			got = append(got, p.Field+": "+p.Reason)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: problems %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestJSONTextProblemsAreBounded(t *testing.T) {
	t.Parallel()
	body := "["
	for i := range 100 {
		if i > 0 {
			body += ","
		}
		body += `"\u0000"`
	}
	body += "]"
	if n := len(rights.JSONTextProblems([]byte(body))); n != rights.MaxTextProblems {
		t.Errorf("%d problems listed, want %d", n, rights.MaxTextProblems)
	}
}
