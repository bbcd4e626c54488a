package wiretest

import (
	"encoding/json"
	"testing"

	"github.com/metal-iaas/metal/test/golden"
)

// JSON is v's JSON and a newline, as metald writes a response body.
func JSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// CheckList checks the conversions of one record type to the wire: the
// list and its first record byte for byte against the goldens
// "wire/<name>s" and "wire/<name>", a nil and an empty list as null and
// [] (as metald served them before), and a filled record converted with
// no wire field left unset.
func CheckList[R, W any](t *testing.T, name string, records []R, one func(R) W, list func([]R) []W) {
	t.Helper()
	golden.Check(t, "wire/"+name+"s", JSON(t, list(records)))
	golden.Check(t, "wire/"+name, JSON(t, one(records[0])))
	if got := JSON(t, list(nil)) + JSON(t, list(records[:0])); got != "null\n[]\n" {
		t.Errorf("empty %s lists: %q", name, got)
	}
	var r R
	Fill(&r)
	if unset := Unset(one(r)); len(unset) > 0 {
		t.Errorf("the %s conversion leaves %v unset", name, unset)
	}
}
