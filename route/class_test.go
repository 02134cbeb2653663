package route

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Classification follows the data: a path inherits its ancestors' class
// (what a processor derives below a tag keeps the tag's class), and the
// shared chain's renames and sibling tags carry every rule along, so
// rules written for the sources' paths hold on the paths routes see.
func TestClassifierFollowsTheChain(t *testing.T) {
	src := ClassificationConfig{Rules: []ClassRule{
		{Match: []string{"acme/plant1/+/fill_weight"}, Class: "confidential"},
		{Match: []string{"acme/+/recipes/#"}, Class: "restricted"},
		{Match: []string{"acme/plant1/line1/speed"}, Class: "public"},
		{Match: []string{"+/+/qa"}, Class: "confidential"},
		{Match: []string{"#"}, Class: "public"}, // broad and low: never wins over the rest
	}}
	rename := PathChange{From: "acme/plant1/", To: "site1/"}
	strip := PathChange{From: "acme"}
	deeper := PathChange{From: "acme/plant1", To: "x/y/z"}
	rate := PathChange{Suffix: "_rate"}
	for _, tc := range []struct {
		name  string
		chain []PathChange
		path  string
		want  Class
	}{
		{"rule as written", nil, "acme/plant1/line1/fill_weight", Confidential},
		{"child inherits: window aggregate", nil, "acme/plant1/line1/fill_weight/mean_5s", Confidential},
		{"grandchild inherits", nil, "acme/plant1/line1/fill_weight/a/b", Confidential},
		{"sibling does not inherit", nil, "acme/plant1/line1/fill_weight_x", Public},
		{"parent does not inherit", nil, "acme/plant1/line1", Public},
		{"child of a public tag is public", nil, "acme/plant1/line1/speed/mean_1m", Public},
		{"no rename: renamed path unclassified", nil, "site1/line1/fill_weight", Public},
		{"rename: literal and '+' levels consumed", []PathChange{rename}, "site1/line1/fill_weight", Confidential},
		{"rename: child of a renamed tag", []PathChange{rename}, "site1/line1/fill_weight/mean_5s", Confidential},
		{"rename: '+' in the from levels", []PathChange{rename}, "site1/recipes/r1", Restricted},
		{"rename: original rules stay", []PathChange{rename}, "acme/plant1/line1/fill_weight", Confidential},
		{"rename: '+' levels consumed by from", []PathChange{{From: "a/qa", To: "b"}}, "b/qa", Confidential},
		{"rename: rule for another area not carried", []PathChange{{From: "other", To: "site1"}}, "site1/line1/fill_weight", Public},
		{"strip: rest follows", []PathChange{strip}, "plant1/line1/fill_weight", Confidential},
		{"strip: '+' in the rest", []PathChange{strip}, "plant9/recipes/r", Restricted},
		{"rename to deeper", []PathChange{deeper}, "x/y/z/line1/fill_weight", Confidential},
		{"two renames in chain order", []PathChange{rename, {From: "site1", To: "s"}}, "s/line1/fill_weight/mean_1m", Confidential},
		{"rate sibling", []PathChange{rate}, "acme/plant1/line1/fill_weight_rate", Confidential},
		{"rate sibling of a '#' area's root", []PathChange{rate}, "acme/p/recipes_rate", Restricted},
		{"rate sibling of a '+' last level", []PathChange{rate}, "a/b/qa_rate", Confidential},
		{"rename then rate", []PathChange{rename, rate}, "site1/line1/fill_weight_rate", Confidential},
		{"rate then rename", []PathChange{rate, rename}, "site1/line1/fill_weight_rate", Confidential},
		{"unrelated path after rename", []PathChange{rename}, "site1/line1/temp", Public},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := NewClassifier(src, tc.chain...)
			if err != nil {
				t.Fatal(err)
			}
			if got := cl.Class(tc.path); got != tc.want {
				t.Errorf("Class(%q) = %s, want %s; rules %v", tc.path, got, tc.want, cl.Rules())
			}
		})
	}
}

// Carried patterns, wildcards on both sides: exact where the image is a
// filter, wider (never narrower) where it is not.
func TestPathChangeImage(t *testing.T) {
	for _, tc := range []struct {
		ch     PathChange
		filter string
		want   string // "" none
	}{
		{PathChange{From: "a/b", To: "c"}, "a/b/x/#", "c/x/#"},
		{PathChange{From: "a/b/", To: "c/"}, "a/+/x/#", "c/x/#"},
		{PathChange{From: "a/b", To: "c"}, "+/+/#", "c/#"},
		{PathChange{From: "a/b", To: "c"}, "a/#", "c/#"},
		{PathChange{From: "a/b", To: "c"}, "#", "c/#"},
		{PathChange{From: "a/b", To: "c"}, "a/z/#", ""},
		{PathChange{From: "a/b", To: "c"}, "b/#", ""},
		{PathChange{From: "a/b", To: "c"}, "a/b/#", "c/#"},
		{PathChange{From: "a/b"}, "a/b/#", "#"},
		{PathChange{From: "a/b"}, "a/+/x/+/#", "x/+/#"},
		{PathChange{From: "a", To: strings.Repeat("l/", 31) + "l"}, "a/x/y/#", strings.Repeat("l/", 31) + "#"},
		{PathChange{Suffix: "_rate"}, "a/b/#", "a/b_rate/#"},
		{PathChange{Suffix: "_rate"}, "a/+/#", ""},
		{PathChange{Suffix: "/rate"}, "a/+/#", "a/+/rate/#"},
		{PathChange{Suffix: "_r/x"}, "a/b/#", "a/b_r/x/#"},
		{PathChange{Suffix: "_rate"}, "#", ""},
	} {
		got := ""
		if img := tc.ch.image(split(tc.filter)); len(img) > 0 {
			got = join(img[0])
		}
		if got != tc.want {
			t.Errorf("%+v carries %q to %q, want %q", tc.ch, tc.filter, got, tc.want)
		}
	}
}

func TestClassifierRules(t *testing.T) {
	cl, err := NewClassifier(ClassificationConfig{Rules: []ClassRule{
		{Match: []string{"a/b/c"}, Class: "confidential"},
		{Match: []string{"x/#"}, Class: "public"},
	}}, PathChange{From: "a", To: "s"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range cl.Rules() {
		got = append(got, r.Filter+" "+r.Class.String()+" "+r.Pattern)
	}
	want := []string{"a/b/c/# confidential a/b/c", "x/# public x/#", "s/b/c/# confidential a/b/c"}
	if !slices.Equal(got, want) {
		t.Errorf("Rules() = %q, want %q", got, want)
	}
	if cl.max() != Confidential {
		t.Errorf("max = %s", cl.max())
	}
}

// Carrying rules through many renames is bounded: past MaxPatterns the
// classifier is refused (validation reports it), not grown.
func TestClassifierBounded(t *testing.T) {
	var rules []ClassRule
	for i := range 2000 {
		rules = append(rules, ClassRule{Match: []string{fmt.Sprintf("a/t%d", i)}, Class: "confidential"})
	}
	chain := []PathChange{{From: "a", To: "b"}, {From: "b", To: "c"}, {From: "c", To: "d"}}
	if _, err := NewClassifier(ClassificationConfig{Rules: rules}, chain...); err != nil {
		t.Fatalf("8000 patterns refused: %v", err)
	}
	chain = append(chain, PathChange{From: "d", To: "e"}, PathChange{From: "e", To: "f"})
	if _, err := NewClassifier(ClassificationConfig{Rules: rules}, chain...); err == nil || !strings.Contains(err.Error(), "more than 10000") {
		t.Errorf("NewClassifier = %v, want too many patterns", err)
	}
}
