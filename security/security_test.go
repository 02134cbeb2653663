package security

import (
	"context"
	"testing"
)

func TestRoleIncludes(t *testing.T) {
	tests := []struct {
		have, need Role
		want       bool
	}{
		{Viewer, Viewer, true},
		{Viewer, Operator, false},
		{Operator, Viewer, true},
		{Operator, Engineer, false},
		{Engineer, Operator, true},
		{Admin, Engineer, true},
		{Admin, Admin, true},
		{Role("root"), Viewer, false},
		{Admin, Role("root"), false},
		{Role(""), Viewer, false},
	}
	for _, tt := range tests {
		if got := tt.have.Includes(tt.need); got != tt.want {
			t.Errorf("%q.Includes(%q) = %v, want %v", tt.have, tt.need, got, tt.want)
		}
	}
}

func TestParseRole(t *testing.T) {
	for _, r := range Roles {
		if got, err := ParseRole(string(r)); err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	if _, err := ParseRole("Admin"); err == nil {
		t.Error("ParseRole(Admin): want an error (role names are lower case)")
	}
}

func TestFanout(t *testing.T) {
	var n int
	count := RecorderFunc(func(context.Context, Event) { n++ })
	Fanout{count, Discard, count}.Record(context.Background(), Event{Kind: LoginOK})
	if n != 2 {
		t.Fatalf("recorded %d times, want 2", n)
	}
}
